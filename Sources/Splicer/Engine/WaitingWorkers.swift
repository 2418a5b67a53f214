import Synchronization

/// Workers waiting for a session limit (the process's or one frontend's) to free a slot: a bit per
/// worker (worker ids past 64 share bits; a shared bit only wakes a worker in vain). A worker
/// registers when a reservation fails; whoever frees a unit of that limit wakes them all.
final class WaitingWorkers: Sendable {
    private let bits = Atomic<UInt64>(0)

    func add(_ worker: Int) {
        bits.bitwiseOr(UInt64(1) << UInt64(worker % 64), ordering: .sequentiallyConsistent)
    }

    var any: Bool { bits.load(ordering: .sequentiallyConsistent) != 0 }

    /// Removes and returns every registered bit.
    func takeAll() -> UInt64 { bits.exchange(0, ordering: .sequentiallyConsistent) }
}
