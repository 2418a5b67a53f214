import Foundation
import Glibc
import Splicer

/// Builds `StatsSnapshot`s from the running system: the engine's per-worker counters (summed with
/// relaxed loads: no lock a worker takes) and the server status the checker publishes (an
/// immutable snapshot: no lock at all).
final class StatsCollector: @unchecked Sendable {
    private let config: GProxyConfig
    private let plan: EngineBuilder.Plan
    private let engine: Engine
    private let checker: HealthChecker
    private let startedMs = Clock.nowMs()
    private let statsSocketShift: Int
    /// Session-rate bookkeeping: previous (time, total) per row key, and the highest rate seen.
    private let rateLock = NSLock()
    private var previous: [String: (ms: UInt64, total: UInt64, rate: Int)] = [:]
    private var rateMax: [String: Int] = [:]
    /// Counter totals at the last `clear counters all` (guarded by `rateLock`), subtracted from
    /// every later reading: the workers' counters are never written by another thread.
    private var baseline: [UInt64] = []

    init(config: GProxyConfig, plan: EngineBuilder.Plan, engine: Engine, checker: HealthChecker) {
        self.config = config
        self.plan = plan
        self.engine = engine
        self.checker = checker
        // A stats socket creates HAProxy's internal CLI proxy, which takes iid 1.
        statsSocketShift = config.global.statsSockets.isEmpty ? 0 : 1
    }

    func snapshot() -> StatsSnapshot {
        let now = Clock.nowMs()
        var proxies: [ProxyStats] = []
        for (i, p) in config.proxies.enumerated() {
            var ps = ProxyStats(name: p.name, id: i + 1 + statsSocketShift, mode: p.mode.rawValue)
            if let f = plan.frontendProxies.firstIndex(of: i) {
                ps.frontend = frontendRow(f, now: now)
            } else if p.mode == .http && p.kind.hasFrontend {
                ps.frontend = FrontendStats(status: "OPEN", counters: RowCounters(slim: p.maxconn ?? engine.spec.globalMaxconn))
            }
            if let b = plan.backendProxies.firstIndex(of: i) {
                ps.servers = serverRows(b, now: now)
                ps.backend = backendRow(b, servers: ps.servers, now: now)
            } else if p.kind.hasBackend {
                ps.backend = BackendStats(status: "UP", counters: RowCounters(), weight: 0, activeServers: 0,
                                          backupServers: 0, downTransitions: 0, lastChangeSeconds: Int(Clock.elapsed(startedMs, now) / 1000),
                                          downtimeSeconds: 0, algorithm: p.balance.rawValue)
            }
            proxies.append(ps)
        }
        var info = ProcessInfoStats()
        info.nbthread = engine.spec.workers
        info.maxconn = engine.spec.globalMaxconn
        info.currentConnections = engine.processSessions.value
        info.maxpipes = engine.spec.pipes.limit
        info.pipesUsed = engine.spec.pipes.used
        info.pipesFree = engine.spec.pipes.free
        info.cumulativeConnections = (0..<engine.spec.frontends.count).reduce(0) {
            $0 + engine.total(engine.layout.frontend($1, .sessions))
        }
        return StatsSnapshot(pid: getpid(), version: GProxyVersion.string, nodeName: config.global.nodeName ?? GProxyVersion.hostname,
                             uptimeSeconds: Int(Clock.elapsed(startedMs, now) / 1000), proxies: proxies, info: info,
                             virtualAddresses: VirtualAddressWatch.holdings(config.global.virtualAddresses))
    }

    private func sum(_ index: Int) -> UInt64 {
        let base = rateLock.withLock { baseline.isEmpty ? 0 : baseline[index] }
        return engine.total(index) &- base
    }

    /// `clear counters`: every max value (sessions, queues, session rate) starts again from now;
    /// `all` also zeroes the cumulative counters and the servers' check failure and DOWN counts.
    func clearCounters(all: Bool) {
        engine.processSessions.resetMax()
        for f in engine.frontendSessions { f.resetMax() }
        for b in engine.backends {
            b.sessions.resetMax()
            for s in b.serverSessions { s.resetMax() }
            b.backendQueueHigh.reset(to: 0)
            for (s, q) in b.serverQueueHigh.enumerated() { q.reset(to: b.queued(onServer: s)) }
        }
        rateLock.withLock {
            rateMax.removeAll()
            if all { baseline = (0..<engine.layout.total).map { engine.total($0) } }
        }
        guard all else { return }
        let checker = self.checker
        checker.perform { checker.clearServerCounters() }
    }

    private func fill(_ c: inout RowCounters, key: String, base: (CounterField) -> Int, now: UInt64) {
        c.stot = sum(base(.sessions))
        c.bin = sum(base(.bytesIn))
        c.bout = sum(base(.bytesOut))
        (c.rate, c.rateMax) = rate(key: key, total: c.stot, now: now)
    }

    private func frontendRow(_ f: Int, now: UInt64) -> FrontendStats {
        var c = RowCounters()
        let live = engine.frontendSessions[f]
        c.scur = live.value
        c.smax = live.max
        c.slim = live.limit > 0 ? live.limit : engine.spec.globalMaxconn
        fill(&c, key: "F\(f)", base: { engine.layout.frontend(f, $0) }, now: now)
        c.dreq = sum(engine.layout.frontend(f, .denied))
        c.ereq = sum(engine.layout.frontend(f, .requestErrors))
        return FrontendStats(status: "OPEN", counters: c)
    }

    private func serverRows(_ b: Int, now: UInt64) -> [ServerStats] {
        let shared = engine.backends[b]
        let addresses = engine.publisher.load().backends[b].addresses
        let status = checker.statusBoard.load().backends[b]
        return status.enumerated().filter { $0.element.present }.map { s, h in
                var c = RowCounters()
                c.scur = shared.serverSessions[s].value
                c.smax = shared.serverSessions[s].max
                c.slim = h.config.maxconn > 0 ? h.config.maxconn : nil
                c.qcur = shared.queued(onServer: s)
                c.qmax = shared.serverQueueHigh[s].value
                c.qlimit = h.config.maxqueue > 0 ? h.config.maxqueue : nil
                fill(&c, key: "S\(b).\(s)", base: { engine.layout.server(b, s, $0) }, now: now)
                c.econ = sum(engine.layout.server(b, s, .connectErrors))
                c.eresp = sum(engine.layout.server(b, s, .responseErrors))
                c.wretr = sum(engine.layout.server(b, s, .retries))
                c.wredis = sum(engine.layout.server(b, s, .redispatches))
                c.cliAbrt = sum(engine.layout.server(b, s, .clientAborts))
                c.srvAbrt = sum(engine.layout.server(b, s, .serverAborts))
                c.lbtot = sum(engine.layout.server(b, s, .lbPicks))
                let last = shared.lastSession[s].valueMs
                c.lastsess = last == 0 ? -1 : Int(Clock.elapsed(last, now) / 1000)
                let addr = h.address ?? addresses[s]
                var st = ServerStats(
                    name: h.name, id: h.config.id ?? s + 1, address: addr.description, counters: c,
                    status: h.state.statusText, lastChangeSeconds: Int(Clock.elapsed(h.lastChangeMs, now) / 1000),
                    downtimeSeconds: h.downtimeSeconds(now: now), weight: h.userWeight, userWeight: h.userWeight,
                    backup: h.isBackup, checked: h.checked, checkStatus: h.checked ? (h.last?.status ?? .initializing) : nil,
                    checkCode: h.last?.code, checkDurationMs: h.last?.durationMs, lastCheckInfo: h.last?.info ?? "",
                    checkRise: h.config.rise, checkFall: h.config.fall, checkHealth: h.state.health,
                    checkFailures: h.checkFailures, downTransitions: h.downTransitions, adminState: h.state.admin,
                    checkRate: h.checkRate(now: now))
                st.initialWeight = h.initialWeight
                st.configDisabled = h.config.disabled
                st.checkPort = h.checkAddress.map { Int($0.port) }
                return st
        }
    }

    private func backendRow(_ b: Int, servers: [ServerStats], now: UInt64) -> BackendStats {
        let shared = engine.backends[b]
        let route = engine.publisher.load().backends[b]
        var c = RowCounters()
        c.scur = shared.sessions.value
        c.smax = shared.sessions.max
        // HAProxy shows fullconn here: 10% of the maxconn of the frontends that route to it.
        let feMax = engine.spec.frontends.filter { $0.backend == b }
            .map { $0.maxconn > 0 ? $0.maxconn : engine.spec.globalMaxconn }.reduce(0, +)
        c.slim = max(1, feMax / 10)
        c.qcur = shared.queuedInBackend
        c.qmax = shared.backendQueueHigh.value
        fill(&c, key: "B\(b)", base: { engine.layout.backend(b, $0) }, now: now)
        c.econ = sum(engine.layout.backend(b, .connectErrors))
        c.eresp = sum(engine.layout.backend(b, .responseErrors))
        c.wretr = sum(engine.layout.backend(b, .retries))
        c.wredis = sum(engine.layout.backend(b, .redispatches))
        c.lbtot = servers.compactMap(\.counters.lbtot).reduce(0, +)
        let last = shared.lastSession.map(\.valueMs).max() ?? 0
        c.lastsess = last == 0 ? -1 : Int(Clock.elapsed(last, now) / 1000)
        let usable = route.eligibleServers.map(Int.init)
        let active = usable.filter { !engine.spec.backends[b].servers[$0].backup }.count
        let down = !servers.isEmpty && route.totalWeight == 0
        return BackendStats(
            status: down ? "DOWN" : "UP", counters: c, weight: route.totalWeight, activeServers: active,
            backupServers: usable.count - active, downTransitions: 0,
            lastChangeSeconds: servers.map(\.lastChangeSeconds).min() ?? Int(Clock.elapsed(startedMs, now) / 1000),
            downtimeSeconds: 0, algorithm: engine.spec.backends[b].balance.rawValue)
    }

    private func rate(key: String, total: UInt64, now: UInt64) -> (Int, Int) {
        rateLock.lock()
        defer { rateLock.unlock() }
        var r = previous[key]?.rate ?? 0
        if let p = previous[key] {
            if Clock.elapsed(p.ms, now) >= 1000 {
                r = Int(Double(total &- p.total) * 1000 / Double(Clock.elapsed(p.ms, now)))
                previous[key] = (now, total, r)
            }
        } else {
            previous[key] = (now, total, 0)
        }
        let m = max(rateMax[key] ?? 0, r)
        rateMax[key] = m
        return (r, m)
    }
}

/// Version strings shown by `-v` and the stats page.
enum GProxyVersion {
    static let number = "0.1.0"
    static let string = "gproxy \(number)"
    static var hostname: String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
