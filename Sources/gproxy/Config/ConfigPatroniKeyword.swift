/// gproxy's own keyword: `patroni primary|replica [options]` turns on Patroni-aware routing for one
/// backend. Plain haproxy.cfg files never contain it, so they keep HAProxy's semantics exactly.
///
///     patroni primary [fast-inter <time>] [discover [max-members <n>]]
///     patroni replica [max-lag <size>] [fallback-to-leader] [fast-inter <time>] [discover [max-members <n>]]
///
/// `<size>` takes Patroni's units (`B`, `kB`, `MB`, `GB`, `TB`, 1024-based) or plain bytes.
extension ConfigParser {
    mutating func parsePatroni(_ words: [String], _ state: inout ProxyState) {
        let usage = "'patroni' expects 'primary' or 'replica', then options: 'fast-inter <time>', "
            + "and for replica 'max-lag <size>', 'fallback-to-leader'."
        if state.isDefaults { return error("'patroni' is not allowed in a 'defaults' section: set it per backend.") }
        guard state.config.kind.hasBackend else {
            return error("'patroni' needs a backend: it is not allowed in frontend '\(state.config.name)'.")
        }
        guard words.count >= 2, let role = PatroniPolicy.Role(rawValue: words[1]) else { return error(usage) }
        var policy = PatroniPolicy(role: role, file: file, line: line)
        var i = 2
        while i < words.count {
            switch words[i] {
            case "fast-inter":
                guard i + 1 < words.count else { return error("'patroni \(role.rawValue)': 'fast-inter' expects a time.") }
                guard let t = try? ConfigValues.parseTime(words[i + 1]).milliseconds, t >= 10 else {
                    return error("'patroni \(role.rawValue)': invalid 'fast-inter' value '\(words[i + 1])' (at least 10ms).")
                }
                policy.fastInterMs = t
                i += 2
            case "max-lag" where role == .replica:
                guard i + 1 < words.count, let bytes = PatroniSize.parse(words[i + 1]) else {
                    return error("'patroni replica': 'max-lag' expects a size such as 1048576, 16MB or 512kB.")
                }
                policy.maxLagBytes = bytes
                i += 2
            case "fallback-to-leader" where role == .replica:
                policy.fallbackToLeader = true
                i += 1
            case "discover":
                policy.discover = true
                i += 1
                if i + 1 < words.count, words[i] == "max-members" {
                    guard let n = Int(words[i + 1]), (1...1024).contains(n) else {
                        return error("'patroni \(role.rawValue)': 'max-members' expects a number from 1 to 1024.")
                    }
                    policy.maxMembers = n
                    i += 2
                }
            default:
                return error("'patroni \(role.rawValue)': unknown option '\(words[i])'. \(usage)")
            }
        }
        state.config.patroni = policy
    }
}

/// Patroni's `parse_int(value, 'B')` units for `?lag=`.
enum PatroniSize {
    static func parse(_ text: String) -> Int? {
        let units: [(String, Int)] = [("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10), ("B", 1)]
        for (suffix, mult) in units where text.hasSuffix(suffix) {
            guard let n = Int(text.dropLast(suffix.count)), n >= 0 else { return nil }
            return n * mult
        }
        guard let n = Int(text), n >= 0 else { return nil }
        return n
    }
}
