import Synchronization

/// A session waiting for a server slot. Lives in a backend's (or one server's) FIFO, shared by all
/// workers; the owning worker and the dispatcher race on `state` with one CAS, so a ticket is
/// either granted exactly once or cancelled exactly once.
final class QueueTicket: @unchecked Sendable {
    static let waiting = 0
    static let granted = 1
    static let cancelled = 2

    let worker: Int
    let backend: Int
    let slot: Int32
    let generation: UInt32
    /// A server the session is bound to (`balance source`), or -1 for any.
    let boundServer: Int
    let enqueuedMs: UInt64
    let state = Atomic<Int>(QueueTicket.waiting)
    /// Arrival order across every worker; written under the backend's queue lock.
    var sequence: UInt64 = 0
    /// The server queue it sits in, or -1 for the backend queue; written under the lock.
    var queueServer = -1
    /// Set by the dispatcher before the grant is posted to the worker's inbox.
    var grantedServer = -1

    init(worker: Int, backend: Int, slot: Int32, generation: UInt32, boundServer: Int, enqueuedMs: UInt64) {
        self.worker = worker
        self.backend = backend
        self.slot = slot
        self.generation = generation
        self.boundServer = boundServer
        self.enqueuedMs = enqueuedMs
    }

    func transition(to new: Int) -> Bool {
        state.compareExchange(expected: QueueTicket.waiting, desired: new, ordering: .sequentiallyConsistent).exchanged
    }
}

/// A growable ring buffer: O(1) push and pop for queues of any depth.
struct Fifo<Element> {
    private var buffer: [Element?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }
    var first: Element? { count == 0 ? nil : buffer[head] }

    mutating func push(_ e: Element) {
        if count == buffer.count { grow() }
        buffer[(head + count) % buffer.count] = e
        count += 1
    }

    @discardableResult
    mutating func pop() -> Element? {
        guard count > 0 else { return nil }
        let e = buffer[head]
        buffer[head] = nil
        head = (head + 1) % buffer.count
        count -= 1
        return e
    }

    /// Keeps only the elements matching `keep`, in order.
    mutating func retain(_ keep: (Element) -> Bool) {
        var kept: [Element?] = []
        while let e = pop() {
            if keep(e) { kept.append(e) }
        }
        buffer = kept
        head = 0
        count = kept.count
    }

    private mutating func grow() {
        var nb = [Element?](repeating: nil, count: max(16, buffer.count * 2))
        for i in 0..<count { nb[i] = buffer[(head + i) % buffer.count] }
        buffer = nb
        head = 0
    }
}
