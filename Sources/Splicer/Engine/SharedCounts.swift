import Synchronization

/// A live count shared by every worker (sessions on a server, in a frontend, in the process), with
/// the highest value seen. Touched once when a session starts and once when it ends — never per
/// relayed byte. Limits (maxconn) are enforced here exactly, across all workers.
public final class LiveCount: Sendable {
    private let current = Atomic<Int>(0)
    private let highest = HighWater()
    /// 0 = unlimited.
    public let limit: Int

    public init(limit: Int) { self.limit = limit }

    public var value: Int { current.load(ordering: .sequentiallyConsistent) }
    public var max: Int { highest.value }

    /// Takes one unit if below the limit.
    @inline(__always)
    public func tryAcquire() -> Bool {
        var v = current.load(ordering: .relaxed)
        while limit == 0 || v < limit {
            let (done, now) = current.compareExchange(
                expected: v, desired: v + 1, ordering: .sequentiallyConsistent)
            if done {
                highest.note(v + 1)
                return true
            }
            v = now
        }
        return false
    }

    /// Takes one unit regardless of the limit (a session handed a slot by the queue already owns it).
    public func forceAcquire() {
        highest.note(current.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue)
    }

    public func release() { current.wrappingSubtract(1, ordering: .sequentiallyConsistent) }

    public var hasRoom: Bool { limit == 0 || value < limit }
}

/// A highest-value tracker for queue depths.
public final class HighWater: Sendable {
    private let v = Atomic<Int>(0)
    public init() {}
    public var value: Int { v.load(ordering: .relaxed) }
    func note(_ x: Int) {
        var h = v.load(ordering: .relaxed)
        while x > h {
            let (done, now) = v.compareExchange(expected: h, desired: x, ordering: .relaxed)
            if done { break }
            h = now
        }
    }
}

/// Seconds-resolution "last session started" stamp per server (`lastsess`).
public final class LastStamp: Sendable {
    private let ms = Atomic<UInt64>(0)
    public init() {}
    public var valueMs: UInt64 { ms.load(ordering: .relaxed) }
    func set(_ x: UInt64) { ms.store(x, ordering: .relaxed) }
}
