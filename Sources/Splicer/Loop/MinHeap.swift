/// A binary min-heap.
public struct MinHeap<Element: Comparable> {
    public init() {}

    private var items: [Element] = []

    public var top: Element? { items.first }
    public var count: Int { items.count }

    public mutating func push(_ e: Element) {
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
    public mutating func popIf(_ condition: (Element) -> Bool) -> Element? {
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
