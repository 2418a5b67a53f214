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

    /// Takes one unit if below the limit; the highest value counts it.
    @inline(__always)
    public func tryAcquire() -> Bool {
        guard let n = tryReserve() else { return false }
        highest.note(n)
        return true
    }

    /// Takes one unit if below the limit without counting it in the highest value yet: the
    /// listener reserves before `accept`, which may find no connection. Returns the count with
    /// this unit; pass it to `confirm` once the unit is really used.
    @inline(__always)
    public func tryReserve() -> Int? {
        var v = current.load(ordering: .relaxed)
        while limit == 0 || v < limit {
            let (done, now) = current.compareExchange(
                expected: v, desired: v + 1, ordering: .sequentiallyConsistent)
            if done { return v + 1 }
            v = now
        }
        return nil
    }

    @inline(__always)
    public func confirm(_ reserved: Int) { highest.note(reserved) }

    /// Takes one unit regardless of the limit (a session handed a slot by the queue already owns it).
    public func forceAcquire() {
        highest.note(current.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue)
    }

    public func release() { current.wrappingSubtract(1, ordering: .sequentiallyConsistent) }

    public var hasRoom: Bool { limit == 0 || value < limit }

    /// `clear counters`: the highest value starts again from the current one.
    public func resetMax() { highest.reset(to: value) }
}

/// A highest-value tracker for queue depths.
public final class HighWater: Sendable {
    private let v = Atomic<Int>(0)
    public init() {}
    public var value: Int { v.load(ordering: .relaxed) }
    /// `clear counters`: forget the past peak (a concurrent `note` may land just before; harmless).
    public func reset(to x: Int) { v.store(x, ordering: .relaxed) }
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
