import Atomics

/// Cumulative counters, one block per worker. Only the owning worker writes its block (a relaxed
/// load + store, no read-modify-write, no shared cache line); readers sum the blocks of every
/// worker with relaxed loads. Each frontend, backend and server owns `CounterField.count` slots.
@safe public final class CounterBlock: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>
    public let count: Int

    init(count: Int) {
        self.count = count
        unsafe storage = .allocate(capacity: max(1, count))
        unsafe storage.initialize(repeating: UnsafeAtomic<UInt64>.Storage(0), count: max(1, count))
    }

    deinit {
        unsafe storage.deinitialize(count: max(1, count))
        unsafe storage.deallocate()
    }

    /// Single-writer add: only the owning worker calls this.
    @inline(__always)
    func add(_ index: Int, _ n: UInt64) {
        // SAFETY: `index` comes from CounterLayout, whose total is this block's `count`.
        let a = unsafe UnsafeAtomic<UInt64>(at: storage + index)
        a.store(a.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    @inline(__always)
    public func load(_ index: Int) -> UInt64 {
        unsafe UnsafeAtomic<UInt64>(at: storage + index).load(ordering: .relaxed)
    }
}

/// The cumulative figures kept per frontend, backend and server.
public enum CounterField: Int, CaseIterable, Sendable {
    case sessions, bytesIn, bytesOut, connectErrors, responseErrors, retries, redispatches
    case clientAborts, serverAborts, lbPicks, denied, requestErrors, queueTimeouts
    public static let count = allCases.count
}

/// Where each entity's slots start in a `CounterBlock`.
public struct CounterLayout: Sendable {
    public let frontendBase: Int
    public let backendBase: Int
    /// First slot of each backend's servers.
    public let serverBase: [Int]
    public let total: Int

    init(spec: EngineSpec) {
        let f = CounterField.count
        frontendBase = 0
        backendBase = spec.frontends.count * f
        var next = backendBase + spec.backends.count * f
        var bases: [Int] = []
        for b in spec.backends {
            bases.append(next)
            next += b.servers.count * f
        }
        serverBase = bases
        total = next
    }

    @inline(__always) public func frontend(_ i: Int, _ field: CounterField) -> Int {
        frontendBase + i * CounterField.count + field.rawValue
    }
    @inline(__always) public func backend(_ i: Int, _ field: CounterField) -> Int {
        backendBase + i * CounterField.count + field.rawValue
    }
    @inline(__always) public func server(_ b: Int, _ s: Int, _ field: CounterField) -> Int {
        serverBase[b] + s * CounterField.count + field.rawValue
    }
}
