import CEpoll
import Glibc
import Splicer

/// Turns the parsed configuration into the engine's runtime description: which proxies become
/// relaying frontends and backends (mode tcp), which become stats listeners (mode http with
/// `stats enable`). Server addresses come resolved from the configuration reader (`-c` and start-up
/// resolve once, as HAProxy does); only a hand-built `ServerConfig` without one is resolved here.
struct EngineBuilder {
    struct Plan {
        var spec: EngineSpec
        /// Config proxy index of each engine frontend / backend.
        var frontendProxies: [Int]
        var backendProxies: [Int]
        /// Config proxy indices of stats listeners.
        var statsProxies: [Int]
        /// Numeric server addresses per engine backend (the check address defaults to these); no
        /// further resolution is needed.
        var serverHosts: [[String]]
    }

    let config: GProxyConfig

    /// Effective log targets of a proxy: its own, plus the global ones with `log global`.
    func logTargets(of p: ProxyConfig) -> [LogTarget] {
        p.logTargets + (p.logGlobal ? config.global.logTargets : [])
    }

    func plan(workers: Int, globalMaxconn: Int) throws(ConfigErrors) -> Plan {
        var errors: [ConfigDiagnostic] = []
        var backends: [BackendSpec] = []
        var backendProxies: [Int] = []
        var hosts: [[String]] = []
        var backendIndex: [String: Int] = [:]
        for (i, p) in config.proxies.enumerated() where p.kind.hasBackend && p.mode == .tcp {
            var servers: [ServerSpec] = []
            var resolved: [String] = []
            for s in p.servers {
                guard let ip = s.address ?? EngineBuilder.resolve(s.host), let addr = SocketAddress(ip: ip, port: s.port) else {
                    errors.append(ConfigDiagnostic(file: s.file, line: s.line,
                                                   message: "'server \(p.name)/\(s.name)' : could not resolve address '\(s.host)'."))
                    continue
                }
                resolved.append(ip)
                servers.append(ServerSpec(name: s.name, address: addr, maxconn: s.maxconn, maxqueue: s.maxqueue,
                                          weight: s.weight, backup: s.backup))
            }
            if let policy = p.patroni, policy.discover {
                // Free slots for members discovered at run time (their address comes with the table).
                let t = policy.template ?? ServerConfig(name: "", host: "0.0.0.0", port: 0)
                while servers.count < policy.maxMembers {
                    servers.append(ServerSpec(name: "", address: SocketAddress(ip: "0.0.0.0", port: 0)!,
                                              maxconn: t.maxconn, maxqueue: t.maxqueue, weight: t.weight))
                    resolved.append("0.0.0.0")
                }
            }
            backendIndex[p.name] = backends.count
            backendProxies.append(i)
            hosts.append(resolved)
            // A Patroni-aware primary holds new sessions in its queue while no writer is confirmed,
            // for `timeout queue` (10 s when neither it nor `timeout connect` is set), and a failed
            // connect to the writer is redispatched (into that queue) once the writer is gone. A
            // Patroni-aware replica backend redispatches too: a replica that refuses (its postmaster
            // just died) hands the read to another one at once instead of `retries` pauses on it.
            let writerWait = p.patroni?.role == .primary
            let queueTimeout = p.timeouts.queue ?? (writerWait && p.timeouts.connect == nil ? 10_000 : nil)
            backends.append(BackendSpec(
                name: p.name, servers: servers, balance: p.balance,
                connectTimeout: p.timeouts.connect, serverTimeout: p.timeouts.server, queueTimeout: queueTimeout,
                tunnelTimeout: p.timeouts.tunnel, serverFinTimeout: p.timeouts.serverFin, retries: p.retries,
                redispatch: p.redispatch || p.patroni != nil, allBackups: p.allBackups, queueWhenNoServer: writerWait))
        }
        var frontends: [FrontendSpec] = []
        var frontendProxies: [Int] = []
        var statsProxies: [Int] = []
        for (i, p) in config.proxies.enumerated() where p.kind.hasFrontend {
            if p.mode == .http {
                statsProxies.append(i)
                continue
            }
            guard let target = p.targetBackendName, let b = backendIndex[target] else {
                errors.append(ConfigDiagnostic(file: p.file, line: p.line, message: "proxy '\(p.name)' has no backend to route to."))
                continue
            }
            let binds = p.binds.compactMap { b in SocketAddress(ip: b.host, port: b.port).map { ($0, b.deferAccept) } }
            let be = config.proxies[backendProxies[b]]
            frontends.append(FrontendSpec(
                name: p.name, binds: binds.map(\.0), deferAccept: binds.map(\.1), maxconn: p.maxconn ?? 0, backend: b,
                clientTimeout: p.timeouts.client,
                clientFinTimeout: p.timeouts.clientFin, logSessions: p.tcplog && !logTargets(of: p).isEmpty,
                alwaysSpliceRequest: p.spliceRequest || be.spliceRequest,
                alwaysSpliceResponse: p.spliceResponse || be.spliceResponse))
            frontendProxies.append(i)
        }
        if !errors.isEmpty { throw ConfigErrors(errors: errors) }
        let spec = EngineSpec(workers: workers, globalMaxconn: globalMaxconn, frontends: frontends, backends: backends,
                              pipeSize: config.global.pipeSize ?? EngineBuilder.defaultPipeSize,
                              maxPipes: config.global.maxpipes ?? 0)
        return Plan(spec: spec, frontendProxies: frontendProxies, backendProxies: backendProxies,
                    statsProxies: statsProxies, serverHosts: hosts)
    }

    /// An IP literal as is, otherwise the first IPv4/IPv6 address getaddrinfo gives.
    static func resolve(_ host: String) -> String? {
        if SocketAddress(ip: host, port: 0) != nil { return host }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &res) == 0, let first = res else { return nil }
        defer { freeaddrinfo(res) }
        var cur: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cur {
            var storage = sockaddr_storage()
            memcpy(&storage, ai.pointee.ai_addr, Int(ai.pointee.ai_addrlen))
            var buf = [CChar](repeating: 0, count: 64)
            var port: Int32 = 0
            if cepoll_format_addr(&storage, &buf, 64, &port) == 0 {
                return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            }
            cur = ai.pointee.ai_next
        }
        return nil
    }

    /// Relay pipes hold bytes only while they are in flight, so a larger pipe costs nothing at rest;
    /// 256 KiB cuts bulk CPU per GB by 10-30 % against the kernel's 64 KiB (`perf/pipe_size.py`,
    /// perf/RESULTS.md). `tune.pipesize` overrides it (HAProxy's default is the kernel's).
    static let defaultPipeSize = 262_144

    /// File descriptors the configuration needs at full load, after HAProxy's `maxsock` (2 × maxconn +
    /// 2 × maxpipes + listeners + checks + 3 per thread + 10): two sockets per connection, two per pipe
    /// when `maxpipes` caps them, each worker's own listening socket per bind (SO_REUSEPORT), one per
    /// checked server, the stats listeners and sockets, three per worker (epoll, eventfd, spare) and
    /// ten for the process (standard streams, log sockets, the checker's loop).
    static func requiredFileDescriptors(config: GProxyConfig, workers: Int, maxconn: Int) -> Int {
        var listeners = config.global.statsSockets.count
        var checks = 0
        for p in config.proxies {
            if p.kind.hasFrontend { listeners += p.binds.count * (p.mode == .tcp ? workers : 1) }
            for s in p.servers where s.check { checks += 1 }
        }
        // atol() lets `maxconn` be anything: clamp so the sum cannot overflow.
        func bounded(_ n: Int) -> Int { min(max(n, 0), Int(Int32.max)) }
        return 2 * bounded(maxconn) + 2 * bounded(config.global.maxpipes ?? 0) + listeners + checks + 3 * workers + 10
    }

    /// HAProxy derives the process maxconn from the fd limit; each gproxy session needs two sockets
    /// plus pipes while bytes are in flight.
    static func automaticMaxconn(fdLimit: Int) -> Int { max(100, (fdLimit - 100) / 3) }
}
