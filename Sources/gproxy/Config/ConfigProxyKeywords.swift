import Foundation

/// Keywords of `defaults`, `frontend`, `backend` and `listen` sections (HAProxy 2.6's
/// `cfg_parse_listen()` and the proxy keyword table), except `server`/`default-server`.
///
/// A keyword that does not apply to the proxy's capability (e.g. `bind` in a backend) is ignored with
/// HAProxy's warning; a keyword gproxy cannot honour is a fatal "not implemented" error.
extension ConfigParser {
    enum Capability { case frontend, backend }

    /// The section word HAProxy uses in "unknown keyword ... in 'X' section".
    var sectionWord: String { sectionKeyword }

    /// Dispatches one statement of a proxy or defaults section.
    mutating func parseProxyKeyword(_ words: [String], negated: Bool) {
        // Moved out, not copied: `current` keeping a reference would make every append to the
        // proxy's server list copy the whole list (quadratic in servers).
        guard var state = current.take() else { return }
        defer { current = state }
        let keyword = words[0]
        switch keyword {
        case "mode": parseMode(words, &state)
        case "bind": parseBind(words, &state)
        case "maxconn":
            guard words.count >= 2 else { return error("'maxconn' expects an integer argument.") }
            if tooManyArgs(words, max: 1) || lacks(.frontend, keyword, state) { return }
            state.config.maxconn = ConfigValues.atol(words[1])
        case "timeout": parseTimeout(words, &state)
        case "retries":
            guard words.count >= 2 else { return error("'retries' expects an integer argument.") }
            if tooManyArgs(words, max: 1) || lacks(.backend, keyword, state) { return }
            state.config.retries = ConfigValues.atol(words[1])
        case "option": parseOption(words, negated: negated, &state)
        case "http-check": parseHTTPCheck(words, &state)
        case "log": parseProxyLog(words, negated: negated, &state)
        case "default_backend":
            guard words.count >= 2 else { return error("'default_backend' expects a backend name.") }
            if tooManyArgs(words, max: 1) || lacks(.frontend, keyword, state) { return }
            state.config.defaultBackend = words[1]
            state.defaultBackendLocation = SourceLocation(file: file, line: line)
        case "use_backend": parseUseBackend(words, &state)
        case "balance": parseBalance(words, &state)
        case "stats": parseStats(words, &state)
        case "server", "default-server": parseServerLine(words, &state)
        case "patroni": parsePatroni(words, &state)
        case "monitor-uri", "monitor", "acl": parseMonitorKeyword(words, &state)
        case "load-server-state-from-file":
            guard words.count >= 2 else {
                return error("'load-server-state-from-file' expects 'global', 'local' or 'none'. Got no argument.")
            }
            if tooManyArgs(words, max: 1) || lacks(.backend, keyword, state) { return }
            guard let mode = ServerStateLoad(rawValue: words[1]) else {
                return error("'load-server-state-from-file' expects 'global', 'local' or 'none'. Got '\(words[1])'")
            }
            state.config.loadServerState = mode
        case "server-state-file-name":
            if tooManyArgs(words, max: 1) || lacks(.backend, keyword, state) { return }
            // No argument or `use-backend-name`: the backend's own name.
            state.config.serverStateFileName = words.count < 2 || words[1] == "use-backend-name" ? nil : words[1]
        default:
            if ConfigKeywordTables.proxyNotImplemented.contains(keyword) {
                notImplemented(keyword)
            } else {
                error("unknown keyword '\(keyword)' in '\(sectionWord)' section")
            }
        }
    }

    /// HAProxy's `alertif_too_many_args()`.
    mutating func tooManyArgs(_ words: [String], max: Int, prefix: Int = 1) -> Bool {
        guard words.count > prefix + max else { return false }
        let name = words.prefix(prefix).joined(separator: " ")
        error("'\(name)' cannot handle unexpected argument '\(words[prefix + max])'.")
        return true
    }

    /// HAProxy's `warnifnotcap()`: warns and tells the caller to ignore the keyword.
    mutating func lacks(_ capability: Capability, _ keyword: String, _ state: ProxyState) -> Bool {
        if state.isDefaults { return false }
        let has = capability == .frontend ? state.config.kind.hasFrontend : state.config.kind.hasBackend
        if has { return false }
        let capWord = capability == .frontend ? "frontend" : "backend"
        warning("'\(keyword)' ignored because \(state.typeWord) '\(state.config.name)' has no \(capWord) capability.")
        return true
    }

    private mutating func parseMode(_ words: [String], _ state: inout ProxyState) {
        guard words.count >= 2 else { return error("'mode' expects one argument ('tcp' or 'http').") }
        if tooManyArgs(words, max: 1) { return }
        guard let mode = ProxyMode(rawValue: words[1]) else { return error("unknown proxy mode '\(words[1])'.") }
        state.config.mode = mode
        state.modeLocation = SourceLocation(file: file, line: line)
    }

    private mutating func parseBind(_ words: [String], _ state: inout ProxyState) {
        if state.isDefaults { return error("'bind' not allowed in 'defaults' section.") }
        if lacks(.frontend, "bind", state) { return }
        guard words.count >= 2 else {
            return error("'bind' expects {<path>|[addr1]:port1[-end1]}{,[addr]:port[-end]}... as arguments.")
        }
        switch ConfigAddress.parseBind(words[1], environment: environment) {
        case .failure(let message):
            return error("'bind' : \(message)")
        case .success(var addresses):
            // Options are checked before the addresses are kept, so a refused option refuses the line.
            var deferAccept = false
            for option in words.dropFirst(2) {
                if option == "defer-accept" {
                    deferAccept = true
                    continue
                }
                if ConfigKeywordTables.bindNotImplemented.contains(option) {
                    return error("keyword 'bind \(option)' is not implemented by gproxy")
                }
                return error("'bind \(words[1])' unknown keyword '\(option)'.")
            }
            for i in addresses.indices { addresses[i].deferAccept = deferAccept }
            state.config.binds.append(contentsOf: addresses)
        }
    }

    private mutating func parseTimeout(_ words: [String], _ state: inout ProxyState) {
        let supported = "'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'http-keep-alive', "
            + "'http-request', 'tunnel', 'tarpit', 'client-fin' and 'server-fin'"
        guard words.count >= 2 else { return error("\(supported) (got '')") }
        let name = words[1]
        let frontendSide: Bool
        switch name {
        case "client", "client-fin": frontendSide = true
        case "server", "connect", "queue", "check", "tunnel", "server-fin": frontendSide = false
        case "http-keep-alive", "http-request", "tarpit": return notImplemented("timeout \(name)")
        default: return error("\(supported) (got '\(name)')")
        }
        guard words.count >= 3 else { return error("'timeout \(name)' expects an integer value (in milliseconds)") }
        if tooManyArgs(words, max: 1, prefix: 2) { return }
        let value: Int
        do {
            let parsed = try ConfigValues.parseTime(words[2])
            if let junk = parsed.trailing { warnTrailing(junk, in: words[2]) }
            value = parsed.milliseconds
        } catch {
            return self.error(timeError(error, argument: words[2], context: "timeout \(name)"))
        }
        let capability: Capability = frontendSide ? .frontend : .backend
        if !state.isDefaults,
            !(frontendSide ? state.config.kind.hasFrontend : state.config.kind.hasBackend) {
            let capWord = capability == .frontend ? "frontend" : "backend"
            return warning("'timeout \(name)' will be ignored because \(state.typeWord) '\(state.config.name)' "
                + "has no \(capWord) capability")
        }
        // 0 means "not set" (infinite), as in HAProxy.
        let stored: Int? = value == 0 ? nil : value
        switch name {
        case "client": state.config.timeouts.client = stored
        case "client-fin": state.config.timeouts.clientFin = stored
        case "server": state.config.timeouts.server = stored
        case "connect": state.config.timeouts.connect = stored
        case "queue": state.config.timeouts.queue = stored
        case "check": state.config.timeouts.check = stored
        case "tunnel": state.config.timeouts.tunnel = stored
        default: state.config.timeouts.serverFin = stored
        }
    }

    /// HAProxy's wording for a refused time value.
    func timeError(_ error: TimeParseError, argument: String, context: String) -> String {
        switch error {
        case .unexpectedCharacter(let c):
            return "unexpected character '\(c)' in '\(context)'"
        case .overflow:
            return "timer overflow in argument '\(argument)' to '\(context)' "
                + "(maximum value is 2147483647 ms or ~24.8 days)"
        case .underflow:
            return "timer underflow in argument '\(argument)' to '\(context)' (minimum non-null value is 1 ms)"
        }
    }

    /// 2.6 only warns about characters after a valid unit (`3sx`).
    mutating func warnTrailing(_ c: Character, in text: String) {
        warning("unexpected character '\(c)' after the timer value '\(text)', only "
            + "(us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are supported.")
    }

    private mutating func parseOption(_ words: [String], negated: Bool, _ state: inout ProxyState) {
        guard words.count >= 2 else { return error("'option' expects an option name.") }
        let name = words[1]
        if ConfigKeywordTables.optionNotImplemented.contains(name) {
            // `no option X` asks for what gproxy always does (X off), so it is accepted.
            if negated { return }
            return notImplemented("option \(name)")
        }
        guard ConfigKeywordTables.optionImplemented.contains(name) else { return error("unknown option '\(name)'.") }
        if name == "httpchk" {
            if lacks(.backend, "option httpchk", state) { return }
            if negated { state.config.httpCheck = nil; return }
            if tooManyArgs(words, max: 3, prefix: 2) { return }
            var request = HTTPCheckRequest()
            let args = Array(words.dropFirst(2))
            switch args.count {
            case 0: break
            case 1: request.uri = args[0]  // a single argument is the URI
            default:
                request.method = args[0]
                request.uri = args[1]
                if args.count == 3 { request.version = args[2] }
            }
            state.config.httpCheck = request
            return
        }
        if tooManyArgs(words, max: 0, prefix: 2) { return }
        let on = !negated
        switch name {
        case "redispatch":
            if !lacks(.backend, "option redispatch", state) { state.config.redispatch = on }
        case "splice-auto":
            // gproxy's relay is what splice-auto asks for, always; saying so beats a silent no-op.
            if on {
                warning("'option splice-auto' has no effect: gproxy's relay already copies small messages and "
                    + "switches each direction to splice once it carries bulk data ('option splice-request' / "
                    + "'splice-response' splice from the first byte).")
            }
        case "splice-request": state.config.spliceRequest = on
        case "splice-response": state.config.spliceResponse = on
        case "tcplog":
            if !lacks(.frontend, "option tcplog", state) { state.config.tcplog = on; if on { state.config.httplog = false } }
        case "httplog":
            if !lacks(.frontend, "option httplog", state) { state.config.httplog = on; if on { state.config.tcplog = false } }
        case "log-health-checks":
            if !lacks(.backend, "option log-health-checks", state) { state.config.logHealthChecks = on }
        default:  // allbackups
            if !lacks(.backend, "option allbackups", state) { state.config.allBackups = on }
        }
    }

    private mutating func parseHTTPCheck(_ words: [String], _ state: inout ProxyState) {
        guard words.count >= 2 else {
            return error("'http-check' expects 'comment', 'connect', 'send', 'expect', 'set-var', 'unset-var', "
                + "'disable-on-404' or 'send-state'.")
        }
        switch words[1] {
        case "expect": break
        case "send", "connect", "comment", "disable-on-404", "send-state", "set-var", "unset-var":
            return notImplemented("http-check \(words[1])")
        default:
            return error("'http-check' only supports 'comment', 'connect', 'send', 'expect', 'set-var', "
                + "'unset-var', 'disable-on-404' and 'send-state' (got '\(words[1])').")
        }
        if lacks(.backend, "http-check", state) { return }
        var args = Array(words.dropFirst(2))
        var expect = HTTPCheckExpect(matcher: .status([]))
        if args.first == "!" {
            expect.negated = true
            args.removeFirst()
        }
        guard let matcher = args.first else {
            return error("'http-check expect' expects 'status', 'rstatus', 'string' as an argument.")
        }
        guard args.count >= 2 else {
            return error("'http-check expect \(matcher)' expects <pattern> as an argument.")
        }
        switch matcher {
        case "status":
            var ranges: [ClosedRange<Int>] = []
            for item in args[1].split(separator: ",", omittingEmptySubsequences: false) {
                let bounds = item.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
                guard bounds.count <= 2, bounds.allSatisfy(ConfigValues.isDecimal),
                    let low = Int(bounds[0]), let high = Int(bounds.last!), low <= high else {
                    return error("'http-check expect status' : invalid status code or range '\(item)'.")
                }
                ranges.append(low...high)
            }
            expect.matcher = .status(ranges)
        case "rstatus":
            // Checked now, so a bad pattern fails -c instead of every check at run time.
            guard (try? NSRegularExpression(pattern: args[1])) != nil else {
                return error("'http-check expect' : regex '\(args[1])' is invalid.")
            }
            expect.matcher = .rstatus(args[1])
        case "string": expect.matcher = .string(args[1])
        case "rstring", "hdr", "fhdr", "string-lf", "rstring-lf", "binary", "rbinary", "binary-lf", "rbinary-lf",
             "min-recv", "comment", "ok-status", "error-status", "tout-status", "on-success", "on-error",
             "status-code":
            return notImplemented("http-check expect \(matcher)")
        default:
            return error("'http-check expect' only supports 'status', 'rstatus', 'string', 'rstring', 'hdr', "
                + "'fhdr', 'string-lf', 'binary', 'rbinary' and 'binary-lf' (got '\(matcher)').")
        }
        if args.count > 2 { return notImplemented("http-check expect \(matcher) ... \(args[2])") }
        state.config.httpCheckExpects.append(expect)
        state.httpCheckExpectLocation = state.httpCheckExpectLocation ?? SourceLocation(file: file, line: line)
    }

    private mutating func parseProxyLog(_ words: [String], negated: Bool, _ state: inout ProxyState) {
        if negated {
            if tooManyArgs(words, max: 0, prefix: 2) { return }
            state.config.logTargets = []
            state.config.logGlobal = false
            return
        }
        if words.count >= 2, words[1] == "global" {
            if tooManyArgs(words, max: 0, prefix: 2) { return }
            state.config.logGlobal = true
            return
        }
        if let target = parseLogTarget(words) { state.config.logTargets.append(target) }
    }

    private mutating func parseUseBackend(_ words: [String], _ state: inout ProxyState) {
        if state.isDefaults { return error("'use_backend' not allowed in 'defaults' section.") }
        guard words.count >= 2 else { return error("'use_backend' expects a backend name.") }
        if words.count > 2, words[2] == "if" || words[2] == "unless" {
            return error("conditional use_backend is not implemented by gproxy")
        }
        if tooManyArgs(words, max: 1) || lacks(.frontend, "use_backend", state) { return }
        if words[1].contains("%[") { return error("dynamic use_backend names are not implemented by gproxy") }
        state.config.useBackends.append(words[1])
        state.useBackendLocations.append(SourceLocation(file: file, line: line))
    }

    private mutating func parseBalance(_ words: [String], _ state: inout ProxyState) {
        let supported = "balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', "
            + "'url_param', 'hdr(name)' and 'rdp-cookie(name)' options."
        guard words.count >= 2 else { return error(supported) }
        if lacks(.backend, "balance", state) { return }
        if let algorithm = BalanceAlgorithm(rawValue: words[1]) {
            if tooManyArgs(words, max: 1) { return }
            state.config.balance = algorithm
            return
        }
        let base = words[1].split(separator: "(", maxSplits: 1).first.map(String.init) ?? words[1]
        if ConfigKeywordTables.balanceNotImplemented.contains(base) {
            return error("balance '\(words[1])' is not implemented by gproxy")
        }
        error(supported)
    }

    private mutating func parseStats(_ words: [String], _ state: inout ProxyState) {
        let expects = "'stats' expects 'admin', 'uri', 'realm', 'auth', 'scope', 'enable', 'hide-version', "
            + "'show-node', 'show-desc' or 'show-legends'."
        guard words.count >= 2 else { return error(expects) }
        let sub = words[1]
        if ConfigKeywordTables.statsNotImplemented.contains(sub) { return notImplemented("stats \(sub)") }
        if lacks(.backend, "stats", state) { return }
        // Any stats setting creates HAProxy's uri_auth, which is what enables the page.
        switch sub {
        case "enable":
            if tooManyArgs(words, max: 0, prefix: 2) { return }
        case "hide-version":
            if tooManyArgs(words, max: 0, prefix: 2) { return }
            state.config.stats.hideVersion = true
        case "uri":
            guard words.count >= 3 else { return error("'uri' needs an URI prefix.") }
            state.config.stats.uri = words[2]
        case "realm":
            guard words.count >= 3 else { return error("'realm' needs an realm name.") }
            state.config.stats.realm = words[2]
        case "auth":
            guard words.count >= 3, let colon = words[2].firstIndex(of: ":") else {
                return error("'auth' needs a user:password account.")
            }
            let credential = StatsCredential(user: String(words[2][..<colon]),
                                             password: String(words[2][words[2].index(after: colon)...]))
            state.config.stats.auth.append(credential)
        case "admin":
            guard words.count >= 3, words[2] == "if" || words[2] == "unless" else {
                return error("'stats admin' requires either 'if' or 'unless' followed by a condition.")
            }
            // gproxy has no ACLs: only the constant conditions (an empty one is true, as in HAProxy).
            let condition = words.dropFirst(3).joined(separator: " ")
            guard ["", "TRUE", "FALSE"].contains(condition) else {
                return notImplemented("stats admin \(words[2]) \(condition)")
            }
            state.config.stats.admin = (words[2] == "if") == (condition != "FALSE")
        case "refresh":
            guard words.count >= 3 else { return error("'refresh' needs a positive interval in seconds.") }
            do {
                let parsed = try ConfigValues.parseTime(words[2], defaultUnit: .seconds)
                if let junk = parsed.trailing { warnTrailing(junk, in: words[2]) }
                state.config.stats.refresh = parsed.milliseconds
            } catch {
                if case .unexpectedCharacter(let c) = error {
                    return self.error("unexpected character '\(c)' in argument to <stats refresh>.")
                }
                return self.error(timeError(error, argument: words[2], context: "stats refresh"))
            }
        default:
            return error(expects)
        }
        state.config.stats.enabled = true
    }
}
