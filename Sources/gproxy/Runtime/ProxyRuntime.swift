import CEpoll
import Logging
import Glibc
import Splicer

/// The running proxy: the engine, the health checker, the stats listeners and runtime sockets,
/// assembled from one configuration. Also the `RuntimeAdmin` the runtime socket drives: admin
/// changes go through the checker's state and publish a new routing table exactly as checks do.
final class ProxyRuntime: RuntimeAdmin, @unchecked Sendable {
    let config: GProxyConfig
    let plan: EngineBuilder.Plan
    let engine: Engine
    let checker: HealthChecker
    let collector: StatsCollector
    let log: EventLog
    /// The process-wide logger (global log targets + stderr).
    let logger: Logger
    /// The control side's thread: stats listeners, runtime sockets, the reload hand-over.
    let control: ControlLoop
    private(set) var statsServers: [StatsServer] = []
    private(set) var runtimeSockets: [RuntimeSocketServer] = []
    private var handover: HandoverEndpoint?

    /// `inherited`: listening sockets handed over by the process this one replaces (reload).
    /// `carriedServerState`: the old process's `show servers state` text (reload hand-over).
    init(config: GProxyConfig, quiet: Bool, workers: Int? = nil,
         inherited: InheritedListeners = InheritedListeners(), carriedServerState: String = "") throws {
        self.config = config
        let fdLimit = Int(cepoll_raise_nofile())
        let globalMaxconn = config.global.maxconn ?? EngineBuilder.automaticMaxconn(fdLimit: fdLimit)
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let builder = EngineBuilder(config: config)
        plan = try builder.plan(workers: workers ?? config.global.nbthread ?? max(1, cores), globalMaxconn: globalMaxconn)
        log = EventLog(sink: LogSink(targets: config.global.logTargets), quiet: quiet)
        logger = log.logger()
        engine = try Engine(spec: plan.spec, inherited: inherited)
        control = try ControlLoop()
        let now = Clock.nowMs()
        let plan = self.plan
        var servers: [[ServerHealth]] = []
        var sinks: [LogSink] = []
        var words: [String] = []
        var logChecks: [Bool] = []
        for (b, pi) in plan.backendProxies.enumerated() {
            let p = config.proxies[pi]
            var list = p.servers.enumerated().map { s, sc in
                let host = sc.checkAddr ?? plan.serverHosts[b][s]
                let port = sc.checkPort ?? sc.port
                return ServerHealth(
                    backend: b, server: s, backendName: p.name, config: sc,
                    checkAddress: sc.check ? SocketAddress(ip: host, port: port) : nil,
                    httpCheck: p.httpCheck, expects: p.httpCheckExpects, timeoutCheck: p.timeouts.check,
                    timeoutConnect: p.timeouts.connect, patroni: p.patroni, now: now)
            }
            // Free discovery slots (see EngineBuilder): present once a member fills them.
            var template = p.patroni?.template ?? ServerConfig(name: "", host: "0.0.0.0", port: 0)
            template.check = true
            while list.count < plan.spec.backends[b].servers.count {
                let slot = ServerHealth(
                    backend: b, server: list.count, backendName: p.name, config: template, checkAddress: nil,
                    httpCheck: p.httpCheck, expects: p.httpCheckExpects, timeoutCheck: p.timeouts.check,
                    timeoutConnect: p.timeouts.connect, patroni: p.patroni, now: now)
                slot.present = false
                list.append(slot)
            }
            servers.append(list)
            sinks.append(LogSink(targets: builder.logTargets(of: p)))
            words.append(p.kind == .listen ? "proxy" : "backend")
            logChecks.append(p.logHealthChecks)
        }
        Self.resumeServerStates(servers, carried: ServerStateFile.parse(carriedServerState), config: config,
                                plan: plan, logger: logger, now: now)
        checker = try HealthChecker(engine: engine, servers: servers, log: log, sinks: sinks, backendWords: words,
                                    logHealthChecks: logChecks, spreadPercent: config.global.spreadChecks)
        let checkerRef = checker
        engine.serverTroubleHandler = { backend, server in checkerRef.noteServerTrouble(backend: backend, server: server) }
        collector = StatsCollector(config: config, plan: plan, engine: engine, checker: checker)
        let frontendSinks = plan.frontendProxies.map { LogSink(targets: builder.logTargets(of: config.proxies[$0])) }
        // Discovered members' names come from the published status: no lock, no checker state.
        let names = SessionLogFormatter(config: config, plan: plan) { [board = checker.statusBoard] b, s in
            board.load().backends[b][s].name
        }
        engine.sessionLogger = { record in
            frontendSinks[record.frontend].emit(.info, names.format(record))
        }
        let snapshot: @Sendable () -> StatsSnapshot = { [collector] in collector.snapshot() }
        for pi in plan.statsProxies {
            let p = config.proxies[pi]
            let server = StatsServer(bind: p.binds.map { ($0.host, $0.port) }, config: p.stats,
                                     clientTimeoutMs: p.timeouts.client, inherited: inherited,
                                     control: control, snapshot: snapshot)
            server.monitor = Self.monitorEndpoint(of: p, config: config, plan: plan, engine: engine)
            statsServers.append(server)
        }
        for sock in config.global.statsSockets {
            runtimeSockets.append(RuntimeSocketServer(config: sock, admin: self, control: control))
        }
        inherited.closeRest()
    }

    /// The proxy's `monitor-uri` endpoint, its `nbsrv()` read from the published routing table.
    private static func monitorEndpoint(of p: ProxyConfig, config: GProxyConfig, plan: EngineBuilder.Plan,
                                        engine: Engine) -> MonitorEndpoint? {
        guard let uri = p.monitor.uri else { return nil }
        let rules = MonitorRules(p.monitor) { name in
            plan.backendProxies.firstIndex { config.proxies[$0].name == name }
        }
        guard let rules else { return nil }  // validation refuses unknown names
        let publisher = engine.publisher
        return MonitorEndpoint(uri: uri, rules: rules) { b in publisher.load().backends[b].eligibleServers.count }
    }

    /// Servers start from a saved state instead of HAProxy's "every server UP": first from the
    /// backend's `load-server-state-from-file`, then from what the replaced process handed over
    /// (fresher), unless the backend says `load-server-state-from-file none`.
    private static func resumeServerStates(_ servers: [[ServerHealth]], carried: ServerStateFile, config: GProxyConfig,
                                           plan: EngineBuilder.Plan, logger: Logger, now: UInt64) {
        for (b, pi) in plan.backendProxies.enumerated() {
            let p = config.proxies[pi]
            let addresses: [SocketAddress?] = servers[b].indices.map { s in
                guard s < p.servers.count else { return nil }
                let host = plan.serverHosts[b][s]
                return SocketAddress(ip: host, port: p.servers[s].port)
            }
            if let path = ServerStateFile.path(load: p.loadServerState, fileName: p.serverStateFileName,
                                               backend: p.name, global: config.global) {
                if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                    let file = ServerStateFile.parse(text)
                    for line in file.skippedLines {
                        logger.event(.warning, "server-state file \(path):\(line): unreadable line skipped.")
                    }
                    let names = file.apply(to: servers[b], backendName: p.name, addresses: addresses, now: now)
                    if !names.isEmpty {
                        logger.event(.notice, "backend \(p.name): state of \(names.count) server(s) loaded from \(path).")
                    }
                } else {
                    logger.event(.warning, "backend \(p.name): can't open server state file '\(path)'.")
                }
            }
            if p.loadServerState != ServerStateLoad.none && !carried.entries.isEmpty {
                let names = carried.apply(to: servers[b], backendName: p.name, addresses: addresses, now: now)
                if !names.isEmpty {
                    logger.event(.notice, "backend \(p.name): state of \(names.count) server(s) carried over from the replaced process.")
                }
            }
        }
    }

    /// What a reload hands over: `show servers state` of every backend.
    func serverStateText() -> String {
        "1\n" + ServerStateLine.header + "\n"
            + ServerStateLine.lines(from: snapshot(), backend: nil).map { $0.text + "\n" }.joined()
    }

    /// Duplicates of every listening socket (frontends and stats), for a reload hand-over.
    func duplicateListeners() -> [Int32] {
        engine.duplicateListeners() + statsServers.flatMap { $0.duplicateListeners() }
    }

    func start() throws {
        // The checker's start-up table (Patroni-aware members DOWN, `disabled`, `init-state`, states
        // carried over a reload) is published before any worker runs: connections already waiting in
        // the backlog would otherwise be routed by the engine's all-UP placeholder.
        checker.publishInitialTable()
        try engine.start()
        checker.start()
        for s in statsServers {
            if s.adminEnabled { s.admin = self }  // released in stopAuxiliaries
            try s.start()
        }
        for r in runtimeSockets { try r.start() }
        control.start()
    }

    /// Serves the reload hand-over from `directory` (nil: report why it cannot be served).
    func startHandover(_ directory: HandoverDirectory) {
        guard let dir = directory.path else {
            logger.event(.warning, directory.problem ?? "reload hand-over disabled.")
            return
        }
        do {
            handover = try HandoverEndpoint(directory: dir, control: control) { [unowned self] in
                (duplicateListeners(), serverStateText())
            }
        } catch {
            logger.event(.warning, "reload hand-over disabled: \(error).")
        }
    }

    /// SIGUSR1: no new work of any kind. The frontends stop accepting (sessions finish), and the
    /// stats listeners, runtime sockets and hand-over endpoint close, so every new request reaches
    /// the process that replaced this one.
    func softStop() {
        engine.softStop()
        handover?.close()
        for s in statsServers { s.stop() }
        for r in runtimeSockets { r.stop() }
    }

    /// Ports the frontends and stats listeners actually bound (tests bind port 0).
    var frontendPorts: [String: [UInt16]] {
        var out: [String: [UInt16]] = [:]
        for (f, pi) in plan.frontendProxies.enumerated() {
            out[config.proxies[pi].name] = engine.boundAddresses[f].map(\.port)
        }
        for (k, pi) in plan.statsProxies.enumerated() { out[config.proxies[pi].name] = statsServers[k].boundPorts }
        return out
    }

    func stopAuxiliaries() {
        handover?.close()
        for s in statsServers { s.stop() }
        for r in runtimeSockets { r.stop() }
        control.stop()
        for s in statsServers { s.admin = nil }
        checker.stop()
    }

    // MARK: - RuntimeAdmin (each change is a job on the checker thread, the only writer)

    func snapshot() -> StatsSnapshot { collector.snapshot() }

    func clearCounters(all: Bool) { collector.clearCounters(all: all) }

    private func backendIndex(_ backend: String) -> Int? {
        plan.backendProxies.firstIndex { config.proxies[$0].name == backend }
    }

    /// Runs `body` on the checker thread with the named server, or answers "No such server.".
    private func withServer(_ backend: String, _ server: String,
                            _ body: @escaping (HealthChecker, ServerHealth) -> String?) -> String? {
        guard let b = backendIndex(backend) else { return "No such server." }
        let checker = self.checker
        return checker.perform {
            guard let s = checker.servers[b].first(where: { $0.present && $0.name == server }) else { return "No such server." }
            return body(checker, s)
        }
    }

    func setServerAdmin(backend: String, server: String, state: ServerAdminState) -> String? {
        let logger = self.logger
        return withServer(backend, server) { checker, s in
            checker.setAdmin(s, state, now: Clock.nowMs(), logger: logger)
            return nil
        }
    }

    func setServerWeight(backend: String, server: String, weight: Int) -> String? {
        guard (0...256).contains(weight) else { return "Weight must be between 0 and 256." }
        return withServer(backend, server) { checker, s in
            s.userWeight = weight
            checker.publishTable()
            return nil
        }
    }

    func shutdownSessions(backend: String, server: String) -> String? {
        withServer(backend, server) { checker, s in
            s.cutSessions(reason: "K")
            checker.publishTable()
            return nil
        }
    }
}
