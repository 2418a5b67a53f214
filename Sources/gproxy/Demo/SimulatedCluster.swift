// A simulated Patroni-managed cluster on 127.0.0.1: N members, each with a database port
// (`SimulatedNode`) and a REST API port (`SimulatedPatroniAPI`), sharing one `SimulatedClusterModel`.
//
// Used by `gproxy --demo` and by the test suites. Everything is thread-safe; `stop()` closes every
// socket and waits for every thread it started, so tests can create and drop clusters freely.
// Ports either come from the caller or from binding port 0; a member keeps its ports across
// stop/start so that a configuration written once stays valid.

#if canImport(Glibc)
import Glibc
#endif
import Splicer

/// One member's servers.
final class SimulatedMember: Sendable {
    let name: String
    let node: SimulatedNode
    let api: SimulatedPatroniAPI

    init(name: String, node: SimulatedNode, api: SimulatedPatroniAPI) {
        self.name = name
        self.node = node
        self.api = api
    }

    var dbPort: UInt16 { node.port }
    var apiPort: UInt16 { api.port }
}

/// The simulated cluster.
final class SimulatedCluster: @unchecked Sendable {
    /// Patroni `scope` (cluster name), shown in the JSON documents.
    let scope: String
    let model: SimulatedClusterModel
    private let lock = PThreadLock()
    private var membersByName: [String: SimulatedMember] = [:]
    private var electionThreads: [pthread_t] = []
    private var stopped = false

    /// Starts `memberCount` members named pg1...pgN on the given ports (0 = pick a free one).
    /// pg1 holds the leader key; the others are running replicas.
    init(memberCount: Int = 4, dbPorts: [UInt16], apiPorts: [UInt16], scope: String = "opengauss") throws {
        precondition(dbPorts.count == memberCount && apiPorts.count == memberCount, "one db and one api port per member")
        self.scope = scope
        model = SimulatedClusterModel(scope: scope)
        do {
            for i in 0..<memberCount {
                try addMember(name: "pg\(i + 1)", dbPort: dbPorts[i], apiPort: apiPorts[i])
            }
        } catch {
            stop()
            throw error
        }
        if memberCount > 0 { model.setLeader("pg1", reason: "bootstrap", promotion: false) }
    }

    /// Starts `memberCount` members on free ports chosen by binding port 0.
    convenience init(memberCount: Int = 4, scope: String = "opengauss") throws {
        let zeros = [UInt16](repeating: 0, count: memberCount)
        try self.init(memberCount: memberCount, dbPorts: zeros, apiPorts: zeros, scope: scope)
    }

    deinit { stop() }

    // MARK: - Membership

    /// Members sorted by name.
    var members: [SimulatedMember] { lock.withLock { membersByName.values.sorted { $0.name < $1.name } } }

    func member(_ name: String) -> SimulatedMember? { lock.withLock { membersByName[name] } }

    var leaderName: String? { model.leaderName }
    var timeline: Int { model.timeline }

    /// Adds and starts a running replica (0 = pick a free port). Throws if a port cannot be bound.
    @discardableResult
    func addMember(name: String, dbPort: UInt16 = 0, apiPort: UInt16 = 0) throws -> SimulatedMember {
        let model = self.model
        let node = SimulatedNode(name: name) {
            model.view(for: name)?.role ?? .replica
        }
        let api = SimulatedPatroniAPI(name: name, model: model)
        let db = try node.start(port: dbPort)
        let http: UInt16
        do { http = try api.start(port: apiPort) } catch {
            node.stop()
            throw error
        }
        model.add(SimulatedMemberInfo(name: name, dbPort: db, apiPort: http))
        let member = SimulatedMember(name: name, node: node, api: api)
        lock.withLock { membersByName[name] = member }
        return member
    }

    /// Stops and removes a member (it disappears from `/cluster`; if it led, the cluster is unlocked).
    func removeMember(_ name: String) {
        guard let m = lock.withLock({ membersByName.removeValue(forKey: name) }) else { return }
        model.remove(name)
        m.api.stop()
        m.node.stop()
    }

    // MARK: - Leadership

    /// Controlled switchover to `candidate` (nil = the first healthy replica by name).
    /// Returns the new leader; the timeline increments.
    @discardableResult
    func switchover(to candidate: String? = nil) throws -> String {
        try model.switchover(expectedLeader: nil, candidate: candidate).get()
    }

    /// A switchover as real Patroni performs it: the old leader stops its database (sessions reset,
    /// new connects refused) while it demotes, and comes back as a replica after `demoteRestartMs`.
    @discardableResult
    func switchover(to candidate: String?, demoteRestartMs: Int) throws -> String {
        guard let old = model.leaderName else { return try switchover(to: candidate) }
        try setDatabase(node: old, up: false, resetConnections: true)
        let new = try switchover(to: candidate)
        let thread = NamedThread.start(name: "demo-restart", stackSize: demoStackSize) { [weak self] in
            let alive = demoSleep(ms: demoteRestartMs) { self?.isStopped ?? true }
            if alive { try? self?.setDatabase(node: old, up: true) }
        }
        lock.withLock { electionThreads.append(thread) }
        return new
    }

    /// Failover. With `killLeader`, the old leader's host "dies": its DB and API ports refuse
    /// connects, its DB sessions are reset and its state becomes `stopped`. Without it, the old
    /// leader merely loses the key and stays up as a replica. Either way the cluster is unlocked
    /// (no node answers 200 on `/`) until the election, which happens after `electionDelayMs`
    /// (0 = before returning) and picks `candidate` or the first running replica by name.
    /// Returns the new leader when the election already happened, else nil.
    @discardableResult
    func failover(killLeader: Bool = true, candidate: String? = nil, electionDelayMs: Int = 0) -> String? {
        let old = model.leaderName
        if let old {
            if killLeader { stopMember(old) }
            model.setLeader(nil, reason: "failover")
        }
        guard electionDelayMs > 0 else { return model.electIfUnlocked(candidate: candidate, excluding: old) }
        let model = self.model
        let thread = NamedThread.start(name: "demo-election", stackSize: demoStackSize) { [weak self] in
            let alive = demoSleep(ms: electionDelayMs) { self?.isStopped ?? true }
            if alive { model.electIfUnlocked(candidate: candidate, excluding: old) }
        }
        lock.withLock { electionThreads.append(thread) }
        return nil
    }

    /// Simulates the member's host going down: DB and API refuse, DB sessions are reset,
    /// state `stopped`. The leader key is not touched (use `failover` for that).
    func stopMember(_ name: String) {
        guard let m = member(name) else { return }
        model.update(name) { $0.state = .stopped }
        m.api.stopListening()
        m.node.stopDatabase(resetConnections: true)
    }

    /// Brings a stopped member back as a running node on its old ports.
    func startMember(_ name: String) throws {
        guard let m = member(name) else { return }
        try m.node.start()
        if model.member(name)?.fault != .refuse { try m.api.start() }
        model.update(name) { $0.state = .running }
    }

    // MARK: - Knobs for tests

    /// Injects an API fault. `.refuse` closes the API listener; leaving it reopens it on the same port.
    func setFault(node name: String, fault: SimulatedAPIFault) {
        guard let m = member(name) else { return }
        model.update(name) { $0.fault = fault }
        if fault == .refuse {
            m.api.stopListening()
        } else if model.member(name)?.state != .stopped {
            _ = try? m.api.start()
        }
    }

    /// Forces the role a node claims (nil = follow the leader key).
    func setRoleOverride(node name: String, role: SimulatedRole?) { model.update(name) { $0.roleOverride = role } }

    /// Sets the Postgres state the API reports (the servers stay up; see `stopMember` for a dead host).
    func setState(node name: String, state: SimulatedState) { model.update(name) { $0.state = state } }

    /// Sets the replay lag (bytes) `/replica?lag=` compares against.
    func setLag(node name: String, bytes: Int) { model.update(name) { $0.lagBytes = bytes } }

    /// Sets or clears (nil) a Patroni tag, e.g. `setTag(node: "pg3", "noloadbalance", "true")`.
    func setTag(node name: String, _ key: String, _ value: String?) { model.update(name) { $0.tags[key] = value } }

    /// Opens or closes a member's DB port without touching its API (Postgres down, Patroni up).
    func setDatabase(node name: String, up: Bool, resetConnections: Bool = false) throws {
        guard let m = member(name) else { return }
        if up { try m.node.start() } else { m.node.stopDatabase(resetConnections: resetConnections) }
    }

    // MARK: - Teardown

    private var isStopped: Bool { lock.withLock { stopped } }

    /// Closes every socket and ends every thread. Idempotent.
    func stop() {
        let (all, elections): ([SimulatedMember], [pthread_t]) = lock.withLock {
            stopped = true
            defer { membersByName = [:]; electionThreads = [] }
            return (Array(membersByName.values), electionThreads)
        }
        for thread in elections { NamedThread.join(thread) }
        for m in all {
            m.api.stop()
            m.node.stop()
        }
    }
}
