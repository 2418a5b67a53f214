import Splicer

/// When each server's next check is due, and when each running check times out: two binary
/// min-heaps, so the checker's loop costs O(log n) per check instead of a scan of every server
/// (1,000 servers checked every second: see perf/RESULTS.md).
///
/// Entries are never removed in place. An entry is acted on only if it still matches the server
/// (its `nextCheckMs`, or its running probe's deadline); superseded ones are dropped when they
/// reach the top. Every change of `nextCheckMs` goes through `HealthChecker.schedule`.
struct CheckSchedule {
    struct Entry: Comparable {
        var time: UInt64
        var backend: Int32
        var server: Int32
        static func < (a: Entry, b: Entry) -> Bool { a.time < b.time }
    }

    private(set) var due = MinHeap<Entry>()
    private(set) var deadlines = MinHeap<Entry>()

    mutating func checkDue(_ s: ServerHealth) {
        due.push(Entry(time: s.nextCheckMs, backend: Int32(s.backend), server: Int32(s.server)))
    }

    mutating func probeStarted(_ s: ServerHealth, connectDeadline: UInt64, deadline: UInt64) {
        deadlines.push(Entry(time: connectDeadline, backend: Int32(s.backend), server: Int32(s.server)))
        if deadline != connectDeadline {
            deadlines.push(Entry(time: deadline, backend: Int32(s.backend), server: Int32(s.server)))
        }
    }

    mutating func popDue(upTo now: UInt64) -> Entry? { due.popIf { $0.time <= now } }
    mutating func popDeadline(upTo now: UInt64) -> Entry? { deadlines.popIf { $0.time <= now } }

    var earliest: UInt64? {
        switch (due.top?.time, deadlines.top?.time) {
        case let (a?, b?): return min(a, b)
        case let (a?, nil): return a
        case let (nil, b?): return b
        default: return nil
        }
    }
}
