import Glibc

/// Scalar value parsing with HAProxy 2.6's exact quirks: `parse_time_err()` for times, `atol()` for
/// most integers (so `maxconn abc` is 0), and `str2sa_range()` for IPv4/IPv6 addresses and ports.

/// Why a time value was refused.
enum TimeParseError: Error, Equatable, Sendable {
    /// The first character that is neither a digit nor a known unit.
    case unexpectedCharacter(Character)
    /// More than 2^31-1 ms.
    case overflow
    /// A non-zero value that rounds to 0 ms (e.g. `1us`).
    case underflow
}

enum ConfigValues {
    enum TimeUnit: Sendable { case milliseconds, seconds }

    /// Parses `<digits>[us|ms|s|m|h|d]` into milliseconds, rounding up like HAProxy.
    /// A bare number is in `defaultUnit` (ms almost everywhere, seconds for `stats refresh`).
    /// `trailing` is a character left after a valid unit, which 2.6 only warns about.
    static func parseTime(
        _ text: String, defaultUnit: TimeUnit = .milliseconds
    ) throws(TimeParseError) -> (milliseconds: Int, trailing: Character?) {
        // Digits and units are ASCII: scan characters, but test digits on their bytes (Character's
        // numeric properties are a Unicode table lookup, a hot spot when loading large configs).
        let chars = Array(text)
        func digit(_ c: Character) -> UInt64? {
            guard let a = c.asciiValue, a >= 0x30, a <= 0x39 else { return nil }
            return UInt64(a - 0x30)
        }
        guard let first = chars.first, digit(first) != nil else {
            throw .unexpectedCharacter(chars.first ?? "\0")
        }
        var value: UInt64 = 0
        var i = 0
        while i < chars.count, let d = digit(chars[i]) {
            value = value &* 10 &+ d
            if value > UInt64(Int32.max) * 1000 { throw .overflow }
            i += 1
        }
        // Output is ms: scale = mult / div applied to the input unit.
        var mult: UInt64 = defaultUnit == .seconds ? 1000 : 1
        var div: UInt64 = 1
        var trailing: Character?
        if i < chars.count {
            switch chars[i] {
            case "s": mult = 1000
            case "u":
                guard i + 1 < chars.count, chars[i + 1] == "s" else { throw .unexpectedCharacter(chars[i]) }
                mult = 1
                div = 1000
                i += 1
            case "m":
                if i + 1 < chars.count, chars[i + 1] == "s" {
                    mult = 1
                    i += 1
                } else {
                    mult = 60_000
                }
            case "h": mult = 3_600_000
            case "d": mult = 86_400_000
            default: throw .unexpectedCharacter(chars[i])
            }
            i += 1
            if i < chars.count { trailing = chars[i] }
        }
        let result = (value * mult + div - 1) / div
        if result >= 0x8000_0000 { throw .overflow }
        if result == 0, value != 0 { throw .underflow }
        return (Int(result), trailing)
    }

    /// C `atol()`: optional blanks and sign, then leading digits; anything else stops the number.
    static func atol(_ text: String) -> Int {
        var bytes = Substring(text).utf8.drop { $0 == 0x20 || $0 == 0x09 }
        var negative = false
        if let sign = bytes.first, sign == 0x2D || sign == 0x2B {
            negative = sign == 0x2D
            bytes = bytes.dropFirst()
        }
        var value = 0
        for b in bytes {
            guard b >= 0x30, b <= 0x39 else { break }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int(b - 0x30))
            // glibc's atol() saturates (it is strtol()); wrapping turned huge ports into valid ones.
            if o1 || o2 { return negative ? Int.min : Int.max }
            value = sum
        }
        return negative ? -value : value
    }

    /// True when the whole word is an unsigned decimal number (for keywords HAProxy checks strictly).
    static func isDecimal(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}

/// An address refused by `ConfigAddress`, worded like HAProxy's `str2sa_range()`.
struct AddressError: Error, Equatable, Sendable, CustomStringConvertible, ExpressibleByStringInterpolation {
    var message: String
    var description: String { message }
    init(stringLiteral value: String) { message = value }
    init(stringInterpolation: DefaultStringInterpolation) { message = String(stringInterpolation: stringInterpolation) }
}

/// Address parsing shared by `bind`, `server` and `log`, after `str2sa_range()`.
enum ConfigAddress {
    /// Address family forced by an `ipv4@`/`ipv6@` prefix.
    enum Family: Sendable { case any, ipv4, ipv6 }

    /// A host/port pair as written, before any resolution.
    struct Split: Sendable {
        var family: Family
        var host: String
        /// The text after the last colon; nil when there was no port separator.
        var port: String?
    }

    /// Strips the prefix and splits host from port at the last `:` not inside brackets.
    /// Returns nil (with a message) for socket kinds gproxy does not implement.
    static func split(_ text: String) -> Result<Split, AddressError> {
        var rest = Substring(text)
        var family = Family.any
        for (prefix, fam) in [("ipv4@", Family.ipv4), ("ipv6@", Family.ipv6)] where rest.hasPrefix(prefix) {
            rest = rest.dropFirst(prefix.count)
            family = fam
        }
        for prefix in ["unix@", "abns@", "fd@", "sockpair@", "udp@", "udp4@", "udp6@", "quic4@", "quic6@",
                       "stream+", "dgram+"] where rest.hasPrefix(prefix) {
            return .failure("address '\(text)' uses '\(prefix)', which is not implemented by gproxy")
        }
        if rest.hasPrefix("/") {
            return .failure("UNIX socket address '\(text)' is not implemented by gproxy")
        }
        // Search backwards for ':' or ']', whichever comes first (str2sa_range()); index 0 counts too.
        let chars = Array(rest)
        var k = chars.count - 1
        while k > 0, chars[k] != ":", chars[k] != "]" { k -= 1 }
        if k >= 0, chars[k] == ":" {
            return .success(Split(family: family, host: String(chars[..<k]), port: String(chars[(k + 1)...])))
        }
        return .success(Split(family: family, host: String(rest), port: nil))
    }

    /// Normalises an IP literal (brackets allowed around IPv6) to its canonical text.
    /// `*` and the empty string are the wildcard of the family.
    static func numericHost(_ host: String, family: Family) -> String? {
        var h = host
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.isEmpty || h == "*" { return family == .ipv6 ? "::" : "0.0.0.0" }
        if family != .ipv6, let v4 = canonical(h, af: AF_INET) { return v4 }
        if family != .ipv4, let v6 = canonical(h, af: AF_INET6) { return v6 }
        return nil
    }

    /// inet_pton() then inet_ntop(): validates and canonicalises (e.g. `0:0::1` → `::1`).
    static func canonical(_ text: String, af: Int32) -> String? {
        var storage = [UInt8](repeating: 0, count: 16)
        let ok = storage.withUnsafeMutableBytes { inet_pton(af, text, $0.baseAddress) }
        guard ok == 1 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let done = storage.withUnsafeBytes { raw in
            inet_ntop(af, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard done else { return nil }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// One `bind` argument: a comma list of `[host]:port[-port]`, expanded to one address per port.
    /// Messages are HAProxy's (`missing port specification in '...'`, `invalid port '0'`, ...).
    static func parseBind(_ text: String, environment: [String: String]) -> Result<[BindAddress], AddressError> {
        var result: [BindAddress] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            let expanded = ConfigTokenizer.expandAddressVariables(item, environment: environment)
            if expanded.isEmpty {
                return .failure("'\(item)' resolves to an empty address (environment variable missing?)")
            }
            let split: Split
            switch self.split(expanded) {
            case .success(let s): split = s
            case .failure(let message): return .failure(message)
            }
            guard var portText = split.port, !portText.isEmpty else {
                return .failure("missing port specification in '\(item)'")
            }
            var host = split.host
            // `::1` splits into host ":" and port "1"; HAProxy reports it as a missing port.
            if numericHost(host, family: split.family) == nil, host != "localhost",
                canonical(expanded, af: AF_INET6) != nil {
                return .failure("missing port specification in '\(item)'")
            }
            guard let first = portText.first else { return .failure("missing port specification in '\(item)'") }
            if first == "+" || first == "-" { return .failure("port offset not permitted here in '\(item)'") }
            guard first.isASCII, first.isNumber else {
                return .failure("invalid character '\(first)' in port number '\(portText)' in '\(item)'")
            }
            var highText = portText
            if let dash = portText.firstIndex(of: "-") {
                highText = String(portText[portText.index(after: dash)...])
                portText = String(portText[..<dash])
            }
            let low = ConfigValues.atol(portText)
            let high = ConfigValues.atol(highText)
            if low < 1 || low > 65535 { return .failure("invalid port '\(portText)'") }
            if high < 1 || high > 65535 { return .failure("invalid port '\(highText)'") }
            if low > high { return .failure("invalid port range '\(low)-\(high)'") }
            if host == "localhost" { host = split.family == .ipv6 ? "::1" : "127.0.0.1" }
            guard let numeric = numericHost(host, family: split.family) else {
                // HAProxy would resolve it with getaddrinfo(); gproxy binds to literals only.
                return .failure("invalid address: '\(host)' in '\(item)' (gproxy binds only to IP literals and 'localhost')")
            }
            for port in low...high { result.append(BindAddress(host: numeric, port: UInt16(port))) }
        }
        return .success(result)
    }

    /// A `server` address: `host[:port]`; no port or port 0 means "the port the client connected to".
    /// An IP literal comes back canonical with `numeric` set; a host name comes back as written (the
    /// validation step resolves it).
    static func parseServer(_ text: String, environment: [String: String])
        -> Result<(host: String, port: UInt16, numeric: Bool), AddressError> {
        let expanded = ConfigTokenizer.expandAddressVariables(text, environment: environment)
        if expanded.isEmpty {
            return .failure("'\(text)' resolves to an empty address (environment variable missing?)")
        }
        let split: Split
        switch self.split(expanded) {
        case .success(let s): split = s
        case .failure(let message): return .failure(message)
        }
        var host = split.host
        var portText = split.port ?? ""
        // A bare IPv6 literal (`::1`, `fe80::2`) has no port: the last group is not a port.
        if split.port != nil, numericHost(host, family: split.family) == nil,
            let whole = canonical(expanded, af: AF_INET6) {
            host = whole
            portText = ""
        }
        var port = 0
        if let first = portText.first {
            if first == "+" || first == "-" {
                return .failure("port offsets ('\(text)') are not implemented by gproxy")
            }
            guard first.isASCII, first.isNumber else {
                return .failure("invalid character '\(first)' in port number '\(portText)' in '\(text)'")
            }
            if portText.contains("-") { return .failure("port range not permitted here in '\(text)'") }
            port = ConfigValues.atol(portText)
            if port > 65535 { return .failure("invalid port '\(portText)'") }
        }
        var isNumeric = false
        if let numeric = numericHost(host, family: split.family) {
            host = numeric
            isNumeric = true
        } else if split.family != .any || host.isEmpty || host.contains(":") || host.contains("[") {
            return .failure("invalid address: '\(host)' in '\(text)'")
        }
        if host == "0.0.0.0" || host == "::" {
            return .failure("server address '\(text)' (forward to the client's destination address) is not implemented by gproxy")
        }
        return .success((host, UInt16(port), isNumeric))
    }
}
