/// Checks that need the whole configuration (HAProxy 2.6's `check_config_validity()`), plus gproxy's
/// own limits (TCP-only: `mode http` exists only for the stats page).
///
/// Errors point at the line of the offending keyword; warnings reproduce what `haproxy -c` prints
/// (first line only), pointing at the proxy's declaration.
extension ConfigParser {
    mutating func validate() {
        var backendNames = Set<String>()
        for proxy in config.proxies where proxy.kind.hasBackend { backendNames.insert(proxy.name) }
        for index in finished.indices {
            validateProxy(index, backendNames: backendNames)
            validateMonitor(index)
        }
        resolveServerAddresses()
    }

    /// HAProxy resolves every server address when it reads the configuration (`init-addr libc`), so
    /// `-c` fails on a name that does not resolve. Each distinct name is asked once.
    private mutating func resolveServerAddresses() {
        var known: [String: String?] = [:]
        for p in config.proxies.indices where !config.proxies[p].servers.isEmpty {
            let proxyName = config.proxies[p].name
            for s in config.proxies[p].servers.indices {
                let server = config.proxies[p].servers[s]
                if server.address != nil { continue }  // an IP literal
                let address: String?
                if let cached = known[server.host] {
                    address = cached
                } else {
                    address = resolver.resolve(server.host)
                    known[server.host] = .some(address)
                }
                guard let address else {
                    error("'server \(proxyName)/\(server.name)' : could not resolve address '\(server.host)'.",
                          at: SourceLocation(file: server.file, line: server.line))
                    continue
                }
                config.proxies[p].servers[s].address = address
            }
        }
    }

    private mutating func validateProxy(_ index: Int, backendNames: Set<String>) {
        let state = finished[index]
        var proxy = config.proxies[index]
        let declared = SourceLocation(file: proxy.file, line: proxy.line)
        let type = state.typeWord
        let name = proxy.name

        // Stats need HTTP mode; HAProxy drops the statement with a warning otherwise.
        if proxy.stats.enabled, proxy.mode != .http {
            addWarning("'stats' statement ignored for \(type) '\(name)' as it requires HTTP mode.", at: declared)
            proxy.stats.enabled = false
        }
        if proxy.mode == .http, !proxy.stats.enabled, proxy.monitor.uri == nil {
            error("\(type) '\(name)' : 'mode http' is only supported for the stats page and 'monitor-uri'; HTTP "
                + "proxying is not implemented by gproxy (TCP only)", at: state.modeLocation ?? declared)
        }
        if proxy.mode == .http, proxy.binds.contains(where: \.deferAccept) {
            // The stats and monitor listeners are not the relay's: they do not apply it.
            addWarning("'bind ... defer-accept' is ignored by gproxy on \(type) '\(name)' (mode http); "
                + "it applies to 'mode tcp' listeners.", at: declared)
        }
        if proxy.httplog, proxy.mode != .http {
            addWarning("'option httplog' not usable with \(type) '\(name)' (needs 'mode http'). "
                + "Falling back to 'option tcplog'.", at: declared)
            proxy.httplog = false
            proxy.tcplog = true
        }

        if proxy.kind.hasFrontend {
            if proxy.binds.isEmpty {
                let message = "\(type) '\(name)' has no 'bind' directive. Please declare it as a backend if this was intended."
                if proxy.kind == .frontend { error(message, at: declared) } else { addWarning(message, at: declared) }
            }
            if let target = proxy.defaultBackend {
                checkBackendTarget(target, keyword: "default_backend", from: proxy, backendNames: backendNames,
                                   at: state.defaultBackendLocation ?? declared)
            }
            for (target, location) in zip(proxy.useBackends, state.useBackendLocations) {
                checkBackendTarget(target, keyword: "use_backend", from: proxy, backendNames: backendNames, at: location)
            }
            if proxy.kind == .frontend, proxy.mode == .tcp, proxy.targetBackendName == nil {
                error("frontend '\(name)' has no backend to forward connections to "
                    + "(neither 'default_backend' nor 'use_backend').", at: declared)
            }
        }

        if let policy = proxy.patroni {
            let at = SourceLocation(file: policy.file, line: policy.line)
            if proxy.mode != .tcp {
                error("\(type) '\(name)' : 'patroni' needs 'mode tcp'.", at: at)
            }
            if policy.discover && proxy.servers.count > policy.maxMembers {
                error("\(type) '\(name)' : 'patroni ... discover max-members \(policy.maxMembers)' is lower than the "
                    + "\(proxy.servers.count) servers configured.", at: at)
            }
            if policy.discover && proxy.servers.isEmpty {
                error("\(type) '\(name)' : 'patroni ... discover' needs at least one server line: its Patroni API "
                    + "is where /cluster is asked.", at: at)
            }
            if let unchecked = proxy.servers.first(where: { !$0.check }) {
                error("\(type) '\(name)' : 'patroni' needs 'check' (with 'port' = the Patroni REST API) on every "
                    + "server; '\(unchecked.name)' has none.", at: at)
            }
        }

        if !proxy.httpCheckExpects.isEmpty, proxy.httpCheck == nil {
            addWarning("'http-check expect' ignored for \(type) '\(name)' because 'option httpchk' is not set.",
                       at: state.httpCheckExpectLocation ?? declared)
            proxy.httpCheckExpects = []
        }

        // haproxy -c: "missing timeouts for proxy 'X'." (src/cfgparse.c).
        let t = proxy.timeouts
        let frontendMissing = proxy.kind.hasFrontend && t.client == nil
        let backendMissing = proxy.kind.hasBackend && !proxy.servers.isEmpty
            && (t.connect == nil || (t.server == nil && (proxy.mode == .http || t.tunnel == nil)))
        if frontendMissing || backendMissing {
            addWarning("missing timeouts for \(type) '\(name)'.", at: declared)
        }

        let hasLogAddress = !proxy.logTargets.isEmpty || (proxy.logGlobal && !config.global.logTargets.isEmpty)
        if proxy.kind.hasFrontend, proxy.tcplog || proxy.httplog, !hasLogAddress {
            addWarning("log format ignored for \(type) '\(name)' since it has no log address.", at: declared)
        }
        config.proxies[index] = proxy
    }

    /// A frontend's target must be a proxy with a backend (a backend or a listen), not itself.
    private mutating func checkBackendTarget(_ target: String, keyword: String, from proxy: ProxyConfig,
                                             backendNames: Set<String>, at location: SourceLocation) {
        if !backendNames.contains(target) {
            error("Proxy '\(proxy.name)': unable to find required \(keyword): '\(target)'.", at: location)
        } else if target == proxy.name, proxy.kind == .listen {
            error("Proxy '\(proxy.name)': \(keyword) points to itself.", at: location)
        }
    }

    private mutating func addWarning(_ message: String, at location: SourceLocation) {
        config.warnings.append(ConfigDiagnostic(file: location.file, line: location.line, message: message))
    }
}
