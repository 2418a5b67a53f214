import Synchronization

/// Per-backend state every worker shares: live session counts per server (maxconn is exact across
/// workers), the round-robin position (one rotation for the whole backend, as HAProxy's), and the
/// queues. The queue lock is taken only when servers are saturated or a queue is non-empty; the
/// relay path and the accept path of an unsaturated backend never touch it.
public final class BackendShared: @unchecked Sendable {
    let index: Int
    let spec: BackendSpec
    /// Established + connecting sessions per server, limited by the server's maxconn.
    public let serverSessions: [LiveCount]
    /// Sessions of this backend (including queued ones), as HAProxy's `beconn`.
    public let sessions: LiveCount
    public let lastSession: [LastStamp]
    let rotation = Atomic<Int>(0)

    /// Waiting tickets: total, in the backend queue, and per server queue (the stats' qcur).
    let waitingTotal = Atomic<Int>(0)
    let waitingBackend = Atomic<Int>(0)
    let waitingServer: [LiveCount]
    public let backendQueueHigh = HighWater()
    public let serverQueueHigh: [HighWater]

    private let lock = PThreadLock()
    private var backendQueue = Fifo<QueueTicket>()
    private var serverQueues: [Fifo<QueueTicket>]
    private var nextSequence: UInt64 = 0
    /// Where grants are delivered (the owning worker's inbox).
    var deliver: (@Sendable (QueueTicket) -> Void)?

    init(index: Int, spec: BackendSpec) {
        self.index = index
        self.spec = spec
        serverSessions = spec.servers.map { LiveCount(limit: $0.maxconn) }
        sessions = LiveCount(limit: 0)
        lastSession = spec.servers.map { _ in LastStamp() }
        waitingServer = spec.servers.map { _ in LiveCount(limit: 0) }
        serverQueueHigh = spec.servers.map { _ in HighWater() }
        serverQueues = spec.servers.map { _ in Fifo<QueueTicket>() }
    }

    public var queuedInBackend: Int { waitingBackend.load(ordering: .relaxed) }
    public func queued(onServer s: Int) -> Int { waitingServer[s].value }
    var anyWaiting: Bool { waitingTotal.load(ordering: .sequentiallyConsistent) > 0 }

    // MARK: - Picking a server (lock-free)

    enum Pick {
        case server(Int)
        /// Every eligible server is at its maxconn; `bound` is the server a hash chose, or -1.
        case full(bound: Int)
        /// No server is eligible at all.
        case noServer
    }

    /// Picks a server and takes one of its slots, following the backend's algorithm.
    func pick(_ route: BackendRoute, clientHash: UInt32, avoid: Int = -1) -> Pick {
        let eligible = route.eligibleServers
        if eligible.isEmpty { return .noServer }
        switch spec.balance {
        case .roundrobin, .staticRR:
            let schedule = route.schedule
            let n = schedule.count
            let start = rotation.wrappingAdd(1, ordering: .relaxed).oldValue
            for k in 0..<n {
                let s = Int(schedule[(start &+ k) % n])
                if s == avoid && eligible.count > 1 { continue }
                if serverSessions[s].tryAcquire() { return .server(s) }
            }
            return .full(bound: -1)
        case .first:
            for s32 in eligible {
                let s = Int(s32)
                if s == avoid && eligible.count > 1 { continue }
                if serverSessions[s].tryAcquire() { return .server(s) }
            }
            return .full(bound: -1)
        case .leastconn:
            // Fewest sessions per unit of weight; ties go to the first in a rotating order. Servers
            // found full are skipped on the next pass; no allocation on the connection path (past 64
            // eligible servers, positions share bits of the mask and fewer are retried).
            let start = rotation.wrappingAdd(1, ordering: .relaxed).oldValue
            let n = eligible.count
            var tried = 0  // passes made; each pass takes the least-loaded server not yet tried
            var triedMask: UInt64 = 0
            while tried < min(n, 64) {
                var best = -1
                var bestLoad = Double.infinity
                for k in 0..<n {
                    let pos = (start &+ k) % n
                    let s = Int(eligible[pos])
                    if triedMask & (1 << UInt64(pos % 64)) != 0 || (s == avoid && n > 1) { continue }
                    let load = Double(serverSessions[s].value + waitingServer[s].value) / Double(max(1, route.weights[s]))
                    if load < bestLoad { bestLoad = load; best = pos }
                }
                guard best >= 0 else { break }
                if serverSessions[Int(eligible[best])].tryAcquire() { return .server(Int(eligible[best])) }
                triedMask |= 1 << UInt64(best % 64)
                tried += 1
            }
            return .full(bound: -1)
        case .source:
            let bound = hashedServer(route, clientHash: clientHash)
            if serverSessions[bound].tryAcquire() { return .server(bound) }
            return .full(bound: bound)
        }
    }

    /// `balance source`: the server a client address hashes to, by weight (an eligible server must exist).
    func hashedServer(_ route: BackendRoute, clientHash: UInt32) -> Int {
        let eligible = route.eligibleServers
        var point = Int(clientHash % UInt32(max(1, route.totalWeight)))
        for s32 in eligible {
            let w = route.weights[Int(s32)]
            if point < w { return Int(s32) }
            point -= w
        }
        return Int(eligible[0])
    }

    /// A server for a ticket of the backend queue. A hash has nothing to hash there (a hashed
    /// session waits in its server's queue; it is here because that queue was full): any server with
    /// room takes it, as any server freeing a slot serves HAProxy's proxy queue.
    private func pickForBackendQueue(_ route: BackendRoute) -> Pick {
        guard spec.balance == .source else { return pick(route, clientHash: 0) }
        for s in route.eligibleServers where serverSessions[Int(s)].tryAcquire() { return .server(Int(s)) }
        return route.eligibleServers.isEmpty ? .noServer : .full(bound: -1)
    }

    // MARK: - Queues (locked, slow path)

    /// Puts a ticket at the tail of the bound server's queue (if it has room under maxqueue) or of
    /// the backend queue, then tries to serve the queues at once so no free slot is missed.
    func enqueue(_ t: QueueTicket, route: BackendRoute) {
        lock.withLock {
            nextSequence += 1
            t.sequence = nextSequence
            let s = t.boundServer
            if s >= 0 && (spec.servers[s].maxqueue == 0 || waitingServer[s].value < spec.servers[s].maxqueue) {
                t.queueServer = s
                serverQueues[s].push(t)
                waitingServer[s].forceAcquire()
                serverQueueHigh[s].note(waitingServer[s].value)
            } else {
                t.queueServer = -1
                backendQueue.push(t)
                let n = waitingBackend.wrappingAdd(1, ordering: .relaxed).newValue
                backendQueueHigh.note(n)
            }
            waitingTotal.wrappingAdd(1, ordering: .sequentiallyConsistent)
        }
        dispatch(route)
    }

    /// The owning worker gives up on a ticket (timeout, client gone). False = it was granted first.
    func cancel(_ t: QueueTicket) -> Bool {
        guard t.transition(to: QueueTicket.cancelled) else { return false }
        uncount(t)
        // Cancelled tickets are dropped lazily at the head; compact when they pile up behind it.
        // The FIFO's length is read under the lock too: other workers push and pop it meanwhile.
        lock.withLock {
            if backendQueue.count > 2 * max(1, queuedInBackend) + 256 {
                backendQueue.retain { $0.state.load(ordering: .relaxed) == QueueTicket.waiting }
            }
        }
        return true
    }

    private func uncount(_ t: QueueTicket) {
        if t.queueServer >= 0 { waitingServer[t.queueServer].release() } else {
            waitingBackend.wrappingSubtract(1, ordering: .relaxed)
        }
        waitingTotal.wrappingSubtract(1, ordering: .sequentiallyConsistent)
    }

    /// A session left server `s`: free its slot, and hand it to the longest-waiting session if any.
    func releaseServerSlot(_ s: Int, route: BackendRoute) {
        serverSessions[s].release()
        if anyWaiting { dispatch(route) }
    }

    /// Serves waiting sessions, oldest first across the backend queue and every server queue, while
    /// slots are free. Callable from any thread.
    func dispatch(_ route: BackendRoute) {
        guard anyWaiting else { return }
        lock.withLock {
            var backendBlocked = false
            while true {
                dropCancelledHeads()
                var best: QueueTicket?
                var bestServer = -1
                if !backendBlocked, let h = backendQueue.first { best = h }
                for s in serverQueues.indices {
                    guard let h = serverQueues[s].first, serverSessions[s].hasRoom else { continue }
                    if best == nil || h.sequence < best!.sequence { best = h; bestServer = s }
                }
                guard let ticket = best else { return }
                var server = bestServer
                if server >= 0 {
                    guard serverSessions[server].tryAcquire() else { return }
                } else {
                    switch pickForBackendQueue(route) {
                    case .server(let s): server = s
                    case .full, .noServer:
                        backendBlocked = true
                        if serverQueues.allSatisfy({ $0.isEmpty }) { return }
                        continue
                    }
                }
                if bestServer >= 0 { serverQueues[bestServer].pop() } else { backendQueue.pop() }
                if ticket.transition(to: QueueTicket.granted) {
                    uncount(ticket)
                    ticket.grantedServer = server
                    deliver?(ticket)
                } else {
                    serverSessions[server].release()
                }
            }
        }
    }

    private func dropCancelledHeads() {
        while let h = backendQueue.first, h.state.load(ordering: .relaxed) != QueueTicket.waiting { backendQueue.pop() }
        for s in serverQueues.indices {
            while let h = serverQueues[s].first, h.state.load(ordering: .relaxed) != QueueTicket.waiting {
                serverQueues[s].pop()
            }
        }
    }
}
