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

/// A binary min-heap.
struct MinHeap<Element: Comparable> {
    private var items: [Element] = []

    var top: Element? { items.first }
    var count: Int { items.count }

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i] < items[parent] else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    /// Pops the top if `condition` holds for it.
    mutating func popIf(_ condition: (Element) -> Bool) -> Element? {
        guard let first = items.first, condition(first) else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l] < items[m] { m = l }
                if r < items.count && items[r] < items[m] { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return first
    }
}
