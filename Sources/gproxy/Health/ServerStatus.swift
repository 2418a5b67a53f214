import Atomics
import Splicer

/// What one server looked like when the checker last published: a value copy of the figures the
/// stats, session logs and the reload hand-over need, so none of them reads the checker's live
/// state (which only the checker thread touches).
struct ServerStatus: Sendable {
    var name: String
    var present: Bool
    var config: ServerConfig
    var isBackup: Bool
    var checkAddress: SocketAddress?
    var address: SocketAddress?
    var state: HealthState
    var userWeight: Int
    var initialWeight: Int
    var last: CheckResult?
    var checkFailures: UInt64
    var downTransitions: UInt64
    var lastChangeMs: UInt64
    var downSinceMs: UInt64?
    var downtimeMs: UInt64
    var recentChecks: [UInt64]

    init(_ s: ServerHealth) {
        name = s.name
        present = s.present
        config = s.config
        isBackup = s.isBackup
        checkAddress = s.checkAddress
        address = s.address
        state = s.state
        userWeight = s.userWeight
        initialWeight = s.initialWeight
        last = s.last
        checkFailures = s.checkFailures
        downTransitions = s.downTransitions
        lastChangeMs = s.lastChangeMs
        downSinceMs = s.downSinceMs
        downtimeMs = s.downtimeMs
        recentChecks = s.recentChecks
    }

    var checked: Bool { present && checkAddress != nil }

    func downtimeSeconds(now: UInt64) -> Int {
        Int((downtimeMs + (downSinceMs.map { Clock.elapsed($0, now) } ?? 0)) / 1000)
    }

    /// Checks per second over the last 10 s.
    func checkRate(now: UInt64) -> Double {
        Double(recentChecks.count { Clock.elapsed($0, now) <= 10_000 }) / 10.0
    }
}

/// Every backend's servers at one moment. Backends that did not change share their array with the
/// previous snapshot, so a publish costs what changed.
final class ServerStatusSnapshot: AtomicReference, Sendable {
    let backends: [[ServerStatus]]
    init(backends: [[ServerStatus]]) { self.backends = backends }
}

/// The checker's published server status: one atomic reference, swapped after changes (the same
/// idiom as the routing table), read by any thread without a lock.
final class ServerStatusBoard: Sendable {
    private let current: ManagedAtomic<ServerStatusSnapshot>

    init(_ first: ServerStatusSnapshot) { current = ManagedAtomic(first) }

    func load() -> ServerStatusSnapshot { current.load(ordering: .acquiring) }

    func publish(_ s: ServerStatusSnapshot) { current.store(s, ordering: .releasing) }
}
