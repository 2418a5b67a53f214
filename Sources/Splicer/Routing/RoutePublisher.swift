import Atomics
import Synchronization

/// Publishes routing tables from the checker to the workers.
///
/// Publishing stores the table, then bumps the generation. A worker's `RouteCache` reads the
/// generation (one acquire load, a plain load on x86) and reloads the table only when it moved, so
/// the per-connection cost is ~1 ns and no lock is ever taken. Retired tables are freed by ARC once
/// the publisher and every worker's cache have let go of them: no use-after-free, no leak.
public final class RoutePublisher: Sendable {
    private let table: ManagedAtomic<RoutingTable>
    private let generationCounter = Atomic<UInt64>(0)

    public init(_ initial: RoutingTable) { table = ManagedAtomic(initial) }

    public func publish(_ t: RoutingTable) {
        table.store(t, ordering: .releasing)
        generationCounter.add(1, ordering: .releasing)
    }

    public var generation: UInt64 { generationCounter.load(ordering: .acquiring) }
    public func load() -> RoutingTable { table.load(ordering: .acquiring) }
}

/// A worker's cached reference to the current table. Never shared between threads.
public struct RouteCache {
    public let publisher: RoutePublisher
    public private(set) var table: RoutingTable
    private var seen: UInt64

    public init(_ p: RoutePublisher) {
        publisher = p
        seen = p.generation
        table = p.load()
    }

    /// Returns true when a newer table was loaded.
    @inline(__always) @discardableResult
    public mutating func refresh() -> Bool {
        let g = publisher.generation  // read the generation first: the table loaded is never older
        if _slowPath(g != seen) {
            seen = g
            table = publisher.load()
            return true
        }
        return false
    }
}
