import Splicer

/// Everything the checker knows about one `server` line: its check settings, its state machine,
/// its last result, and the figures the stats page shows. Only the checker thread touches it; other
/// threads read the `ServerStatus` copies the checker publishes.
final class ServerHealth: EventHandler {
    let backend: Int
    let server: Int
    let backendName: String
    /// Mutable only for members discovered from Patroni's `/cluster` (a free slot takes a new member).
    var name: String
    var config: ServerConfig
    let isBackup: Bool
    /// Where checks go (`addr`/`port` or the server's own), nil for unchecked servers.
    var checkAddress: SocketAddress?
    /// False for an unused discovery slot: not checked, not routed, not shown.
    var present = true
    /// Where traffic goes when it differs from the configured address (discovered members).
    var address: SocketAddress?
    /// HTTP request bytes, or nil for a TCP connect check.
    let request: [UInt8]?
    let expects: [HTTPCheckExpect]
    let connectTimeoutMs: Int
    let totalTimeoutMs: Int

    var state: HealthState
    var userWeight: Int
    let initialWeight: Int
    var shutdownEpoch: UInt32 = 0
    var shutdownReason = UInt8(ascii: "D")
    var last: CheckResult?
    var checkFailures: UInt64 = 0
    var downTransitions: UInt64 = 0
    var lastChangeMs: UInt64
    var downSinceMs: UInt64?
    var downtimeMs: UInt64 = 0
    var nextCheckMs: UInt64 = 0
    var probe: CheckProbe?
    var probeToken: LoopToken?
    /// The checker that owns this server (probe events are delivered through it).
    weak var owner: HealthChecker?
    /// Patroni-aware mode: the policy of this server's backend, and what its API said last.
    let patroni: PatroniPolicy?
    var answer: PatroniAnswer?
    /// Start times of recent checks, for the check rate in the stats.
    var recentChecks: [UInt64] = []

    /// Its check probe's socket is registered with the checker's loop with this object as handler.
    override func handle(events: UInt32, tag _: UInt32) { owner?.probeEvent(self, events: events) }

    init(backend: Int, server: Int, backendName: String, config: ServerConfig, checkAddress: SocketAddress?,
         httpCheck: HTTPCheckRequest?, expects: [HTTPCheckExpect], timeoutCheck: Int?, timeoutConnect: Int?,
         patroni: PatroniPolicy? = nil, now: UInt64) {
        self.backend = backend
        self.server = server
        self.backendName = backendName
        name = config.name
        self.config = config
        isBackup = config.backup
        self.checkAddress = config.check ? checkAddress : nil
        self.patroni = patroni
        if let patroni {
            // GET, so the JSON body tells role, state and timeline; the status alone says yes/no.
            var uri = httpCheck?.uri ?? (patroni.role == .primary ? "/primary" : "/replica")
            if let lag = patroni.maxLagBytes, !uri.contains("?") { uri += "?lag=\(lag)" }
            request = Array("GET \(uri) HTTP/1.0\r\n\r\n".utf8)
            self.expects = [HTTPCheckExpect(matcher: .status([200...200]))]
        } else {
            request = httpCheck.map { Array($0.requestBytes.utf8) }
            self.expects = expects
        }
        // haproxy-semantics.md §3.4: without `timeout check` the whole check must fit in `inter`;
        // with it, connect gets min(inter, timeout connect) and the response `timeout check`.
        if let tc = timeoutCheck {
            connectTimeoutMs = min(config.inter, timeoutConnect ?? config.inter)
            totalTimeoutMs = connectTimeoutMs + tc
        } else {
            connectTimeoutMs = config.inter
            totalTimeoutMs = config.inter
        }
        // Patroni-aware members start DOWN: nothing is routed until the cluster itself has answered.
        state = HealthState(rise: config.rise, fall: config.fall, checked: config.check && checkAddress != nil,
                            initState: patroni != nil ? .fullyDown : config.initState)
        if config.disabled { state.admin = .maint }
        userWeight = config.weight
        initialWeight = config.weight
        lastChangeMs = now
        if !state.running { downSinceMs = now }
    }

    var checked: Bool { present && checkAddress != nil }

    /// Puts a member discovered from `/cluster` into this free slot, DOWN until its first answer.
    func admit(name: String, address: SocketAddress, checkAddress: SocketAddress, now: UInt64) {
        self.name = name
        config.name = name
        self.address = address
        self.checkAddress = checkAddress
        present = true
        state = HealthState(rise: config.rise, fall: config.fall, checked: true, initState: .fullyDown)
        last = nil
        answer = nil
        lastChangeMs = now
        downSinceMs = now
    }

    /// Asks every worker to cut this server's established sessions (the next routing table carries
    /// the new epoch). `reason` is the session log's first letter: D(own), U(p: backup), K(illed).
    func cutSessions(reason: Character) {
        shutdownEpoch &+= 1
        shutdownReason = reason.asciiValue ?? UInt8(ascii: "D")
    }

    /// Frees the slot of a member that left the cluster; its sessions are cut.
    /// The checker closes the running probe first (`closeProbe`).
    func evict(now: UInt64) {
        present = false
        checkAddress = nil
        state.force(running: false, health: 0)
        cutSessions(reason: "D")
        noteTransition(now: now, up: false)
    }

    /// What the engine's routing table should say about this server.
    var runtimeState: ServerRuntimeState {
        ServerRuntimeState(running: present && state.usable, weight: state.admin == .drain ? 0 : userWeight,
                           shutdownEpoch: shutdownEpoch, shutdownReason: shutdownReason, address: address)
    }

    func noteTransition(now: UInt64, up: Bool) {
        lastChangeMs = now
        if up {
            if let since = downSinceMs { downtimeMs += Clock.elapsed(since, now) }
            downSinceMs = nil
        } else {
            downTransitions += 1
            downSinceMs = now
        }
    }

    func downtimeSeconds(now: UInt64) -> Int {
        Int((downtimeMs + (downSinceMs.map { Clock.elapsed($0, now) } ?? 0)) / 1000)
    }

    func noteCheckStarted(now: UInt64) {
        recentChecks.append(now)
        if recentChecks.count > 64 || (recentChecks.first.map { Clock.elapsed($0, now) > 10_000 } ?? false) {
            recentChecks.removeAll { Clock.elapsed($0, now) > 10_000 }
        }
    }

    /// Checks per second over the last 10 s.
    func checkRate(now: UInt64) -> Double {
        let recent = recentChecks.filter { Clock.elapsed($0, now) <= 10_000 }
        return Double(recent.count) / 10.0
    }
}
