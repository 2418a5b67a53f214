/// `monitor-uri`, `monitor fail` and the `acl` subset they use (see `MonitorConfig`). Anything
/// outside the subset is a fatal "not implemented", never silently accepted.
extension ConfigParser {
    /// HAProxy's predefined ACLs gproxy cannot evaluate (it evaluates TRUE and FALSE).
    static let unsupportedPredefinedACLs: Set<String> = [
        "HTTP", "HTTP_1.0", "HTTP_1.1", "HTTP_CONTENT", "HTTP_URL_ABS", "HTTP_URL_SLASH", "HTTP_URL_STAR",
        "LOCALHOST", "METH_CONNECT", "METH_DELETE", "METH_GET", "METH_HEAD", "METH_OPTIONS", "METH_POST",
        "METH_PUT", "METH_TRACE", "RDP_COOKIE", "REQ_CONTENT", "WAIT_END",
    ]

    /// Dispatches `monitor-uri`, `monitor` and `acl`.
    mutating func parseMonitorKeyword(_ words: [String], _ state: inout ProxyState) {
        switch words[0] {
        case "monitor-uri":
            guard words.count >= 2, !words[1].isEmpty else { return error("'monitor-uri' expects an URI.") }
            if tooManyArgs(words, max: 1) || lacks(.frontend, "monitor-uri", state) { return }
            state.config.monitor.uri = words[1]
        case "monitor": parseMonitorFail(words, &state)
        default: parseACL(words, &state)
        }
    }

    /// `acl NAME nbsrv(BACKEND) [lt|le|eq|ge|gt] N`.
    private mutating func parseACL(_ words: [String], _ state: inout ProxyState) {
        if state.isDefaults { return error("'acl' not allowed in anonymous 'defaults' section.") }
        guard words.count >= 3 else { return error("'acl' expects an ACL name and a fetch method.") }
        let name = words[1]
        if MonitorPredefinedACL.values[name] != nil || Self.unsupportedPredefinedACLs.contains(name) {
            return error("'acl \(name)' : a predefined ACL cannot be redefined.")
        }
        let fetch = words[2]
        guard fetch.hasPrefix("nbsrv(") && fetch.hasSuffix(")") && fetch.count > "nbsrv()".count else {
            let keyword = String(fetch.prefix { $0 != "(" })
            return error("keyword 'acl ... \(keyword)' is not implemented by gproxy: the only ACL gproxy evaluates is "
                + "'acl NAME nbsrv(BACKEND) [lt|le|eq|ge|gt] N', for 'monitor fail'.")
        }
        let backend = String(fetch.dropFirst("nbsrv(".count).dropLast())
        var rest = Array(words.dropFirst(3))
        if let flag = rest.first(where: { $0.hasPrefix("-") && Int($0) == nil }) {
            return error("keyword 'acl ... \(flag)' is not implemented by gproxy.")
        }
        var comparison = MonitorACL.Comparison.eq
        if let first = rest.first, let c = MonitorACL.Comparison(rawValue: first) {
            comparison = c
            rest.removeFirst()
        }
        guard let value = rest.first else {
            return error("'acl \(name) \(fetch)' expects a number to compare with (gproxy requires one).")
        }
        guard let n = Int(value) else { return error("error detected while parsing ACL '\(name)' : '\(value)' is not a number.") }
        guard rest.count == 1 else {
            return error("'acl \(name) \(fetch)' : several values are not implemented by gproxy (one comparison per line).")
        }
        state.config.monitor.acls.append(MonitorACL(name: name, backend: backend, comparison: comparison, value: n,
                                                    file: file, line: line))
    }

    /// `monitor fail if|unless COND`.
    private mutating func parseMonitorFail(_ words: [String], _ state: inout ProxyState) {
        guard words.count >= 2, words[1] == "fail" else { return error("'monitor' expects 'fail'.") }
        if state.isDefaults { return error("'monitor' not allowed in 'defaults' section.") }
        if lacks(.frontend, "monitor fail", state) { return }
        guard words.count >= 4, words[2] == "if" || words[2] == "unless" else {
            return error("'monitor fail' requires either 'if' or 'unless' followed by a condition.")
        }
        var alternatives: [[MonitorCondition.Term]] = [[]]
        for word in words.dropFirst(3) {
            if word == "||" {
                guard !(alternatives.last?.isEmpty ?? true) else { return error("'monitor fail' : empty term before '||'.") }
                alternatives.append([])
                continue
            }
            if word.hasPrefix("{") || word == "}" {
                return error("keyword 'monitor fail ... { anonymous ACL }' is not implemented by gproxy: declare it with 'acl'.")
            }
            var name = Substring(word)
            var negated = false
            while name.hasPrefix("!") { negated.toggle(); name = name.dropFirst() }
            let acl = String(name)
            if Self.unsupportedPredefinedACLs.contains(acl) {
                return error("keyword 'monitor fail ... \(acl)' (predefined ACL) is not implemented by gproxy.")
            }
            guard MonitorPredefinedACL.values[acl] != nil || state.config.monitor.acls.contains(where: { $0.name == acl }) else {
                return error("error detected while parsing a 'monitor fail' condition : no such ACL : '\(acl)'.")
            }
            alternatives[alternatives.count - 1].append(.init(acl: acl, negated: negated))
        }
        guard !(alternatives.last?.isEmpty ?? true) else { return error("'monitor fail' : empty term after '||'.") }
        state.config.monitor.failConditions.append(MonitorCondition(unless: words[2] == "unless", alternatives: alternatives,
                                                                    file: file, line: line))
    }

    /// Whole-config checks: a monitor endpoint needs `mode http`; `nbsrv()` names a TCP backend.
    mutating func validateMonitor(_ index: Int) {
        let proxy = config.proxies[index]
        let type = finished[index].typeWord
        if proxy.monitor.uri != nil, proxy.mode != .http {
            config.warnings.append(ConfigDiagnostic(file: proxy.file, line: proxy.line,
                message: "monitor-uri will be ignored for \(type) '\(proxy.name)' (needs 'mode http')."))
            config.proxies[index].monitor.uri = nil
        }
        if proxy.monitor.uri == nil, !proxy.monitor.acls.isEmpty || !proxy.monitor.failConditions.isEmpty {
            config.warnings.append(ConfigDiagnostic(file: proxy.file, line: proxy.line,
                message: "'acl'/'monitor fail' of \(type) '\(proxy.name)' unused: gproxy evaluates them only for a 'monitor-uri'."))
        }
        for acl in proxy.monitor.acls {
            let at = SourceLocation(file: acl.file, line: acl.line)
            guard let target = config.proxies.first(where: { $0.name == acl.backend && $0.kind.hasBackend }) else {
                error("unable to find backend '\(acl.backend)' referenced in arg 1 of ACL keyword 'nbsrv' in proxy '\(proxy.name)'.", at: at)
                continue
            }
            if target.mode != .tcp {
                error("'nbsrv(\(acl.backend))' in proxy '\(proxy.name)' : gproxy counts servers of 'mode tcp' backends only.", at: at)
            }
        }
    }
}
