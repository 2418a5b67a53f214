// The shared, lock-protected model of the simulated Patroni cluster: who holds the leader key, the
// timeline, and each member's Postgres state, tags, lag and injected API fault.
//
// Both kinds of simulated server read it on every connection (the database port for its banner,
// the REST API for every health decision), so a change made by a test, a switchover or a failover
// is visible to the very next connection. It holds no sockets; `SimulatedCluster` owns those.

#if canImport(Glibc)
import Glibc
#endif
import Splicer

/// Formats the current UTC time with `strftime` (C locale, so day and month names are English).
func demoFormatTime(_ format: String) -> String {
    var t = time(nil)
    var tmv = tm()
    gmtime_r(&t, &tmv)
    var buf = [UInt8](repeating: 0, count: 64)
    let n = buf.withUnsafeMutableBufferPointer { b in
        b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { strftime($0, b.count, format, &tmv) }
    }
    return String(decoding: buf[0..<n], as: UTF8.self)
}

/// Postgres role as the REST API's JSON `role` reports it (Patroni ≥ 4.0 spelling).
enum SimulatedRole: String, Sendable, Equatable {
    case primary
    case replica
}

/// Postgres state as Patroni reports it in `state`. Only `running` passes `/health` and `/replica`.
enum SimulatedState: String, Sendable, Equatable {
    case running
    case stopped
    case starting
}

/// Misbehaviour injected into one member's REST API, for health-checker tests.
enum SimulatedAPIFault: Sendable, Equatable {
    /// Patroni's real behaviour.
    case normal
    /// The API listener is closed: connects are refused (HAProxy's L4CON).
    case refuse
    /// Accept and read the request, then never answer until the client goes away (L7TOUT).
    case hang
    /// Read the request, then close with SO_LINGER 0 so the client sees ECONNRESET.
    case resetAfterRequest
    /// Answer `GARBAGE\r\n\r\n` and close (L7RSP).
    case garbage
    /// Read the request, then close normally without a byte of reply (L7RSP).
    case closeWithoutResponse
    /// Answer correctly, after this many milliseconds.
    case slow(ms: Int)
    /// Always answer with this status code, whatever the path.
    case forceStatus(Int)
}

/// A snapshot of one member, as stored in the model.
struct SimulatedMemberInfo: Sendable, Equatable {
    var name: String
    var dbPort: UInt16
    var apiPort: UInt16
    var state: SimulatedState = .running
    /// Forces the Postgres role this node claims, whatever the leader key says (nil = follow it).
    /// `.primary` on a replica makes two nodes answer 200 on `/` (a stale `is_leader` within ttl).
    var roleOverride: SimulatedRole?
    /// Patroni tags, values already stringified (`noloadbalance` → "true").
    var tags: [String: String] = [:]
    /// Replay lag behind the leader, in bytes (used by `/replica?lag=`).
    var lagBytes: Int = 0
    var fault: SimulatedAPIFault = .normal

    var noLoadBalance: Bool { ["true", "1", "yes", "on"].contains(tags["noloadbalance"]?.lowercased() ?? "") }
}

/// Everything one REST API request needs to decide and render its answer.
struct PatroniNodeView: Sendable {
    var member: SimulatedMemberInfo
    /// The holder of the leader key; nil while the cluster is unlocked (during a failover).
    var leaderName: String?
    var timeline: Int
    var scope: String
    /// All members, sorted by name (the `/cluster` order).
    var members: [SimulatedMemberInfo]
    /// The leader's WAL position in bytes; replicas are `lagBytes` behind it.
    var leaderLSN: Int

    /// Patroni's `is_leader()`: holds the (unexpired) leader key, or is forced to claim it.
    var isLeader: Bool {
        if let forced = member.roleOverride { return forced == .primary }
        return leaderName == member.name
    }

    var role: SimulatedRole { isLeader ? .primary : .replica }
}

/// Why a switchover or failover request was refused (Patroni answers 412 or 503 with this text).
struct SimulatedSwitchoverError: Error, Equatable, Sendable, CustomStringConvertible {
    var status: Int
    var message: String
    var description: String { message }
}

/// The lock-protected state shared by the cluster and its servers.
final class SimulatedClusterModel: @unchecked Sendable {
    let scope: String
    private let lock = PThreadLock()
    private var members: [String: SimulatedMemberInfo] = [:]
    private var leader: String?
    private var currentTimeline = 1
    /// Grows on every leader change so the JSON positions move like real WAL.
    private var lsn = 0x0400_0060
    /// Patroni's `/history`: [timeline, lsn, reason, timestamp, new_leader].
    private var historyEntries: [(Int, Int, String, String, String)] = []

    init(scope: String) { self.scope = scope }

    var leaderName: String? { lock.withLock { leader } }
    var timeline: Int { lock.withLock { currentTimeline } }
    var memberNames: [String] { lock.withLock { members.keys.sorted() } }

    func member(_ name: String) -> SimulatedMemberInfo? { lock.withLock { members[name] } }

    func add(_ info: SimulatedMemberInfo) { lock.withLock { members[info.name] = info } }

    func remove(_ name: String) {
        lock.withLock {
            members[name] = nil
            if leader == name { leader = nil }
        }
    }

    /// Applies `change` to one member atomically; returns false when there is no such member.
    @discardableResult
    func update(_ name: String, _ change: (inout SimulatedMemberInfo) -> Void) -> Bool {
        lock.withLock {
            guard var m = members[name] else { return false }
            change(&m)
            members[name] = m
            return true
        }
    }

    /// Sets or clears the leader key. A promotion starts a new timeline; the bootstrap leader
    /// (`promotion: false`) stays on timeline 1, as a freshly initialised cluster does.
    func setLeader(_ name: String?, reason: String, promotion: Bool = true) {
        lock.withLock { setLeaderLocked(name, reason: reason, promotion: promotion) }
    }

    private func setLeaderLocked(_ name: String?, reason: String, promotion: Bool = true) {
        guard name != leader else { return }
        if let name, promotion {
            historyEntries.append((currentTimeline, lsn, reason, Self.isoNow(), name))
            currentTimeline += 1
            lsn += 0x0100_0000
        }
        leader = name
    }

    /// The view one member's API works from; nil when the member was removed.
    func view(for name: String) -> PatroniNodeView? {
        lock.withLock {
            guard let m = members[name] else { return nil }
            return PatroniNodeView(
                member: m, leaderName: leader, timeline: currentTimeline, scope: scope,
                members: members.values.sorted { $0.name < $1.name }, leaderLSN: lsn)
        }
    }

    var history: [(Int, Int, String, String, String)] { lock.withLock { historyEntries } }

    /// Moves the leader key to `candidate` (or the first healthy replica by name) — Patroni's
    /// `/switchover` and manual `/failover`. `expectedLeader`, when given, must be the current leader.
    func switchover(expectedLeader: String?, candidate: String?) -> Result<String, SimulatedSwitchoverError> {
        lock.withLock {
            if let expectedLeader, expectedLeader != leader {
                return .failure(.init(status: 412, message: "leader name does not match"))
            }
            if let candidate {
                guard let c = members[candidate] else {
                    return .failure(.init(status: 412, message: "candidate does not exists"))
                }
                if candidate == leader {
                    return .failure(.init(status: 412, message: "candidate name does not match with leader"))
                }
                guard c.state == .running else {
                    return .failure(.init(status: 412, message: "candidate is not running"))
                }
                setLeaderLocked(candidate, reason: "switchover")
                return .success(candidate)
            }
            guard let next = healthyReplicaLocked() else {
                return .failure(.init(status: 412, message: "switchover is not possible: no good candidates have been found"))
            }
            setLeaderLocked(next, reason: "switchover")
            return .success(next)
        }
    }

    /// Elects `candidate`, or the first running member by name other than `excluding` (the
    /// deposed leader), when nobody holds the key.
    @discardableResult
    func electIfUnlocked(candidate: String?, excluding: String? = nil) -> String? {
        lock.withLock {
            if let leader { return leader }
            let next = candidate.flatMap { members[$0]?.state == .running ? $0 : nil }
                ?? healthyReplicaLocked(excluding: excluding)
            if let next { setLeaderLocked(next, reason: "no recovery target specified") }
            return next
        }
    }

    private func healthyReplicaLocked(excluding: String? = nil) -> String? {
        members.values.filter { $0.name != leader && $0.name != excluding && $0.state == .running && $0.tags["nofailover"] != "true" }
            .map(\.name).sorted().first
    }

    private static func isoNow() -> String { demoFormatTime("%Y-%m-%dT%H:%M:%S+00:00") }
}
