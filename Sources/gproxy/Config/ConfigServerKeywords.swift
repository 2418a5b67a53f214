/// `server` and `default-server` lines (HAProxy 2.6's `_srv_parse_init()`, `srv_settings_cpy()` and the
/// server keyword table in `src/server.c` / `src/check.c`).
///
/// Semantics (cfg §5.2, observed): a `server` line copies the proxy's hidden default server *as it is
/// now*, then applies its own options in order; `default-server` applies options to that hidden server,
/// so settings build up and reach only the servers declared after it. Option order does not matter
/// except that a later option overrides an earlier one.
extension ConfigParser {
    /// Parses `server NAME ADDR[:PORT] [options]` or `default-server [options]`.
    mutating func parseServerLine(_ words: [String], _ state: inout ProxyState) {
        let isDefault = words[0] == "default-server"
        if !isDefault, state.isDefaults { return error("'server' not allowed in 'defaults' section.") }
        if lacks(.backend, words[0], state) { return }

        if isDefault {
            var hidden = state.defaultServer
            let context = "'default-server'"
            if applyServerOptions(Array(words.dropFirst()), to: &hidden, context: context, isDefault: true) {
                state.defaultServer = hidden
            }
            return
        }

        guard words.count >= 3 else {
            return error("'server' expects <name> and <addr>[:<port>] as arguments.")
        }
        let name = words[1]
        if let bad = Self.invalidNameCharacter(name) {
            return error("character '\(bad)' is not permitted in server name '\(name)'.")
        }
        let context = "'server \(state.config.name)/\(name)'"
        var server = state.defaultServer
        server.name = name
        server.file = file
        server.line = line
        switch ConfigAddress.parseServer(words[2], environment: environment) {
        case .failure(let message):
            return error("\(context) : \(message)")
        case .success(let address):
            server.host = address.host
            server.port = address.port
            server.address = address.numeric ? address.host : nil
        }
        guard applyServerOptions(Array(words.dropFirst(3)), to: &server, context: context, isDefault: false) else {
            return
        }
        if let index = state.serverByName[name] {
            let other = state.config.servers[index]
            return error("proxy '\(state.config.name)', another server named '\(name)' was already defined "
                + "at line \(other.line), please use distinct names.")
        }
        if let id = server.id, let index = state.serverByID[id] {
            let other = state.config.servers[index]
            return error("\(context) : custom id \(id) already used at \(other.file):\(other.line) "
                + "('server \(other.name)')")
        }
        if server.check, server.port == 0, server.checkPort == nil {
            // HAProxy refuses a check with nowhere to connect: the service port follows the client.
            return error("\(context) : server '\(name)' has neither service port nor check port, "
                + "and a health check was requested.")
        }
        state.serverByName[name] = state.config.servers.count
        if let id = server.id { state.serverByID[id] = state.config.servers.count }
        state.config.servers.append(server)
    }

    /// Applies server options in order. Returns false (after reporting) on the first bad option, like
    /// HAProxy, which abandons the rest of the line.
    private mutating func applyServerOptions(
        _ args: [String], to server: inout ServerConfig, context: String, isDefault: Bool
    ) -> Bool {
        var i = 0
        func value() -> String? { i + 1 < args.count ? args[i + 1] : nil }
        while i < args.count {
            let option = args[i]
            var consumed = 1
            switch option {
            case "check": server.check = true
            case "no-check": server.check = false
            case "backup": server.backup = true
            case "no-backup": server.backup = false
            case "disabled": server.disabled = true
            case "enabled": server.disabled = false
            case "port":
                guard let text = value() else { return fail(context, "'port' expects a port number as argument.") }
                let port = ConfigValues.atol(text)
                guard (1...65535).contains(port) else { return fail(context, "invalid port '\(text)' for 'port'.") }
                server.checkPort = UInt16(port)
                consumed = 2
            case "addr":
                guard let text = value() else { return fail(context, "'addr' expects an address as argument.") }
                let expanded = ConfigTokenizer.expandAddressVariables(text, environment: environment)
                guard let ip = ConfigAddress.numericHost(expanded, family: .any), !expanded.isEmpty else {
                    return fail(context, "invalid address '\(text)' for 'addr'.")
                }
                server.checkAddr = ip
                consumed = 2
            case "inter", "fastinter", "downinter":
                guard let text = value() else {
                    return fail(context, "'\(option)' expects a time value as argument.")
                }
                let ms: Int
                do {
                    let parsed = try ConfigValues.parseTime(text)
                    if let junk = parsed.trailing { warnTrailing(junk, in: text) }
                    ms = parsed.milliseconds
                } catch {
                    if case .unexpectedCharacter(let c) = error {
                        return fail(context, "unexpected character '\(c)' in '\(option)' argument of server "
                            + "\(server.name.isEmpty ? "default-server" : server.name).")
                    }
                    return fail(context, timeError(error, argument: text, context: option))
                }
                guard ms > 0 else { return fail(context, "invalid value 0 for argument '\(option)'") }
                switch option {
                case "inter": server.inter = ms
                case "fastinter": server.fastinter = ms
                default: server.downinter = ms
                }
                consumed = 2
            case "rise", "fall":
                guard let text = value() else { return fail(context, "'\(option)' expects an integer argument.") }
                let n = ConfigValues.atol(text)
                guard n > 0 else { return fail(context, "'\(option)' has to be > 0.") }
                if option == "rise" { server.rise = n } else { server.fall = n }
                consumed = 2
            case "weight":
                guard let text = value() else { return fail(context, "'weight' expects an integer argument.") }
                let w = ConfigValues.atol(text)
                guard (0...256).contains(w) else {
                    let who = server.name.isEmpty ? "default-server" : server.name
                    return fail(context, "weight of server \(who) is not within 0 and 256 (\(w)).")
                }
                server.weight = w
                consumed = 2
            case "maxconn", "maxqueue":
                // atol(): `maxconn abc` is accepted as 0 (unlimited), as HAProxy does.
                guard let text = value() else { return fail(context, "'\(option)' expects an integer argument.") }
                if option == "maxconn" { server.maxconn = ConfigValues.atol(text) }
                else { server.maxqueue = ConfigValues.atol(text) }
                consumed = 2
            case "on-marked-down":
                guard value() == "shutdown-sessions" else {
                    return fail(context, "'on-marked-down' expects 'shutdown-sessions' but got '\(value() ?? "")'.")
                }
                server.shutdownSessionsOnDown = true
                consumed = 2
            case "on-marked-up":
                guard value() == "shutdown-backup-sessions" else {
                    return fail(context,
                                "'on-marked-up' expects 'shutdown-backup-sessions' but got '\(value() ?? "")'.")
                }
                server.shutdownBackupSessionsOnUp = true
                consumed = 2
            case "init-state":
                guard let text = value(), let initial = InitState(rawValue: text), initial != .haproxyDefault else {
                    return fail(context, "'init-state' expects 'fully-up', 'up', 'down' or 'fully-down' "
                        + "but got '\(value() ?? "")'.")
                }
                server.initState = initial
                consumed = 2
            case "id":
                if isDefault { return fail(context, "'id' is not supported in default-server.") }
                guard let text = value() else { return fail(context, "'id' expects an integer argument.") }
                let id = ConfigValues.atol(text)
                guard id > 0 else { return fail(context, "custom id has to be > 0.") }
                server.id = id
                consumed = 2
            default:
                if ConfigKeywordTables.serverNotImplemented.contains(option) {
                    error("\(context) : keyword '\(option)' is not implemented by gproxy")
                } else {
                    error("\(context) : unknown keyword '\(option)'")
                }
                return false
            }
            i += consumed
        }
        return true
    }

    private mutating func fail(_ context: String, _ message: String) -> Bool {
        error("\(context) : \(message)")
        return false
    }
}
