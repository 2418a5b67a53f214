import Glibc

/// The `global` section and `log` targets (HAProxy 2.6's `cfg_parse_global()` and `parse_logsrv()`).
///
/// `global` may appear several times; its settings add up. Process-level features gproxy does not
/// have (chroot, user/group, SSL tuning, Lua, ...) are refused rather than silently ignored.
extension ConfigParser {
    mutating func parseGlobalKeyword(_ words: [String]) {
        let keyword = words[0]
        switch keyword {
        case "maxconn":
            guard words.count >= 2 else { return error("'maxconn' expects an integer argument.") }
            if tooManyArgs(words, max: 1) { return }
            config.global.maxconn = ConfigValues.atol(words[1])
        case "nbthread":
            guard words.count >= 2 else { return error("'nbthread' expects an integer argument.") }
            if tooManyArgs(words, max: 1) { return }
            let n = ConfigValues.atol(words[1])
            guard ConfigValues.isDecimal(words[1]), (1...64).contains(n) else {
                return error("'nbthread' must be between 1 and 64 (was \(words[1])).")
            }
            config.global.nbthread = n
        case "pidfile":
            guard words.count >= 2 else { return error("'pidfile' expects a file name as an argument.") }
            if tooManyArgs(words, max: 1) { return }
            config.global.pidfile = words[1]
        case "server-state-file", "server-state-base":
            guard words.count >= 2 else { return error("'\(keyword)' expects a file name as an argument.") }
            if tooManyArgs(words, max: 1) { return }
            if keyword == "server-state-file" { config.global.serverStateFile = words[1] } else { config.global.serverStateBase = words[1] }
        case "daemon":
            if tooManyArgs(words, max: 0) { return }
            config.global.daemon = true
        case "spread-checks":
            guard words.count >= 2 else { return error("'spread-checks' expects an integer argument.") }
            if tooManyArgs(words, max: 1) { return }
            let n = ConfigValues.atol(words[1])
            guard (0...50).contains(n) else { return error("'spread-checks' needs a positive value in range 0..50.") }
            config.global.spreadChecks = n
        case "node":
            // HAProxy: the name shown on the stats page and in `show info` (default: the host name).
            if tooManyArgs(words, max: 1) { return }
            guard words.count >= 2, !words[1].isEmpty,
                  words[1].utf8.allSatisfy({ ConfigParser.nodeNameBytes.contains($0) }) else {
                return error("'node' requires valid node name - non-empty string with digits(0-9), letters(A-Z, a-z), dot(.), hyphen(-) or underscore(_).")
            }
            config.global.nodeName = words[1]
        case "vip":
            // gproxy extension (two nodes behind keepalived): the virtual addresses whose holder the
            // stats page, `show info` and /metrics report.
            guard words.count >= 2 else { return error("'vip' expects one or more IPv4 or IPv6 addresses.") }
            for a in words.dropFirst() {
                guard let c = VirtualAddressWatch.canonical(a) else {
                    return error("'vip': '\(a)' is not an IPv4 or IPv6 address.")
                }
                if !config.global.virtualAddresses.contains(c) { config.global.virtualAddresses.append(c) }
            }
        case "log":
            if words.count >= 2, words[1] == "global" {
                return error("'log global' makes no sense in the 'global' section.")
            }
            if let target = parseLogTarget(words) { config.global.logTargets.append(target) }
        case "stats":
            parseGlobalStats(words)
        case "tune.pipesize":
            guard words.count >= 2, ConfigValues.isDecimal(words[1]), ConfigValues.atol(words[1]) > 0 else {
                return error("'tune.pipesize' expects a positive integer argument.")
            }
            if tooManyArgs(words, max: 1) { return }
            config.global.pipeSize = ConfigValues.atol(words[1])
        case "maxpipes":
            guard words.count >= 2, ConfigValues.isDecimal(words[1]) else {
                return error("'maxpipes' expects a positive integer argument.")
            }
            if tooManyArgs(words, max: 1) { return }
            // 0 keeps HAProxy's meaning of "not set" (no cap).
            let n = ConfigValues.atol(words[1])
            config.global.maxpipes = n > 0 ? n : nil
        default:
            if ConfigKeywordTables.globalNotImplemented.contains(keyword) || keyword.hasPrefix("tune.")
                || keyword.hasPrefix("ssl-") || keyword.hasPrefix("lua-") || keyword.hasPrefix("httpclient.") {
                notImplemented(keyword)
            } else {
                error("unknown keyword '\(keyword)' in 'global' section")
            }
        }
    }

    static let nodeNameBytes = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.".utf8)

    /// `stats socket <path> [mode M] [level L] [expose-fd listeners]`.
    private mutating func parseGlobalStats(_ words: [String]) {
        guard words.count >= 2 else {
            return error("'stats' expects 'socket', 'maxconn', 'timeout' or 'bind-process'.")
        }
        switch words[1] {
        case "socket": break
        case "timeout", "maxconn", "bind-process": return notImplemented("stats \(words[1])")
        default: return error("'stats' only supports 'socket', 'maxconn', 'bind-process' and 'timeout' "
            + "(got '\(words[1])').")
        }
        guard words.count >= 3 else { return error("'stats socket' requires a path or an address.") }
        var socket = StatsSocketConfig(path: words[2], file: file, line: line)
        var i = 3
        while i < words.count {
            let option = words[i]
            let value: String? = i + 1 < words.count ? words[i + 1] : nil
            switch option {
            case "mode":
                guard let value, !value.isEmpty, value.allSatisfy({ ("0"..."7").contains($0) }),
                    let mode = UInt32(value, radix: 8) else {
                    return error("'stats socket' : 'mode' expects an octal file mode (got '\(value ?? "")').")
                }
                socket.mode = mode
            case "level":
                guard let value, ["user", "operator", "admin"].contains(value) else {
                    return error("'level' only supports 'user', 'operator', and 'admin' (got '\(value ?? "")').")
                }
                socket.level = value
            case "expose-fd":
                // HAProxy's `-x` seamless reload takes the listeners through this socket; gproxy's reload
                // always does the equivalent through its own channel. Kept so a HAProxy config still starts.
                guard value == "listeners" else {
                    return error("'expose-fd' only supports 'listeners' (got '\(value ?? "")').")
                }
                warning("'stats socket' : 'expose-fd listeners' is implied: gproxy always hands its listening "
                    + "sockets over to the process that replaces it (-sf), through its own channel.")
            default:
                if ConfigKeywordTables.bindNotImplemented.contains(option) {
                    return notImplemented("stats socket \(option)")
                }
                return error("'stats socket \(words[2])' unknown keyword '\(option)'.")
            }
            i += 2
        }
        config.global.statsSockets.append(socket)
    }

    /// `log <target> [len N] [format F] <facility> [level [minlevel]]`, shared by global and proxies.
    mutating func parseLogTarget(_ words: [String]) -> LogTarget? {
        guard words.count >= 3 else {
            error("'log' expects either <address[:port]> and <facility> or 'global' as arguments.")
            return nil
        }
        let destination: LogTarget.Destination
        switch words[1] {
        case "stdout", "fd@1": destination = .stdout
        case "stderr", "fd@2": destination = .stderr
        default:
            let text = ConfigTokenizer.expandAddressVariables(words[1], environment: environment)
            var body = Substring(text)
            for prefix in ["udp@", "udp4@", "udp6@", "ipv4@", "ipv6@"] where body.hasPrefix(prefix) {
                body = body.dropFirst(prefix.count)
            }
            if body.hasPrefix("/") || body.hasPrefix("ring@") || body.contains("@") {
                error("log target '\(words[1])' is not implemented by gproxy (only stdout, stderr and UDP syslog)")
                return nil
            }
            guard case .success(let split) = ConfigAddress.split(String(body)) else {
                error("log target '\(words[1])' is not implemented by gproxy")
                return nil
            }
            var host = split.host
            var portText = split.port ?? ""
            if split.port != nil, ConfigAddress.numericHost(host, family: .any) == nil,
                let whole = ConfigAddress.canonical(String(body), af: AF_INET6) {
                host = whole  // a bare IPv6 literal
                portText = ""
            }
            let port = portText.isEmpty ? 514 : ConfigValues.atol(portText)
            guard ConfigValues.isDecimal(portText) || portText.isEmpty, (1...65535).contains(port),
                let ip = ConfigAddress.numericHost(host, family: .any), !host.isEmpty else {
                error("invalid log target '\(words[1])': expected stdout, stderr or ip[:port].")
                return nil
            }
            destination = .udp(host: ip, port: UInt16(port))
        }
        var target = LogTarget(destination: destination, facility: "")
        var i = 2
        // Optional `len` and `format` come before the facility, in any order.
        while i < words.count {
            if words[i] == "len" {
                let text = i + 1 < words.count ? words[i + 1] : ""
                let length = ConfigValues.isDecimal(text) && text.count <= 6 ? ConfigValues.atol(text) : 0
                guard (80...65535).contains(length) else {
                    error("log : invalid log length '\(text)', must be between 80 and 65535")
                    return nil
                }
                target.maxLength = length
                i += 2
            } else if words[i] == "format" {
                guard i + 1 < words.count else {
                    error("'format' expects a log format name.")
                    return nil
                }
                let format = words[i + 1]
                switch format {
                case "raw", "rfc3164", "short": target.format = format
                case "rfc5424", "iso", "local", "priority", "timed":
                    error("log format '\(format)' is not implemented by gproxy")
                    return nil
                default:
                    error("unknown log format '\(format)'")
                    return nil
                }
                i += 2
            } else if words[i] == "sample" {
                notImplemented("log sample")
                return nil
            } else {
                break
            }
        }
        guard i < words.count else {
            error("'log' expects <facility> as argument.")
            return nil
        }
        guard ConfigKeywordTables.logFacilities.contains(words[i]) else {
            error("unknown log facility '\(words[i])'")
            return nil
        }
        target.facility = words[i]
        i += 1
        if i < words.count {
            guard ConfigKeywordTables.logLevels.contains(words[i]) else {
                error("unknown optional log level '\(words[i])'")
                return nil
            }
            target.level = words[i]
            i += 1
        }
        if i < words.count {
            if ConfigKeywordTables.logLevels.contains(words[i]) {
                notImplemented("log minimum level")
            } else {
                error("unknown optional minimum log level '\(words[i])'")
            }
            return nil
        }
        return target
    }
}
