/// The stats listener's HTTP logic as a pure function: request bytes in, response bytes out. The
/// server loop only moves bytes; everything HTTP lives here so it is tested without sockets.
///
/// - Parsing is strict and bounded: request line ≤ 8 KiB (else 414), header block ≤ 16 KiB
///   (else 431), malformed → 400, methods other than GET/HEAD → 405, except POST with
///   `stats admin` (body by Content-Length only, ≤ 16 KiB: else 411 / 413; see `StatsAdminForm`).
/// - `stats uri` is a prefix; `;csv`, `;json`, `;norefresh`, `;up`, `;no-maint` anywhere after
///   it select the format and filters, as in HAProxy.
/// - gproxy extension: the exact path `/metrics` serves Prometheus text on the stats listener
///   whatever `stats uri` is (with `stats uri /` it would otherwise be the HTML page), behind the
///   same `stats auth`.
enum StatsHTTPHandler {
    static let maxRequestLine = 8 * 1024
    static let maxHeaderBytes = 16 * 1024
    /// An admin form post's body.
    static let maxBodyBytes = 16 * 1024
    /// Largest input the handler ever needs; a server can cap its buffer here.
    static let maxRequestBytes = maxRequestLine + maxHeaderBytes + 4 + maxBodyBytes

    struct Request: Sendable, Equatable {
        var method: String
        var uri: String
        var version: String
        /// Header names lower-cased, in arrival order.
        var headers: [(name: String, value: String)]
        /// Where the body starts in the bytes parsed.
        var bodyOffset = 0
        /// The one length every `Content-Length` header (and list element) agrees on.
        var contentLength: Int?

        static func == (a: Request, b: Request) -> Bool {
            a.method == b.method && a.uri == b.uri && a.version == b.version
                && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
        }

        func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }
    }

    enum Parse: Sendable, Equatable {
        /// More bytes are needed.
        case incomplete
        case request(Request)
        /// The status to answer with (400, 414, 431).
        case failure(Int)
    }

    // MARK: - Parsing

    /// Parses a request head. Lines end with CRLF (a bare LF is tolerated, as HAProxy does); a CR
    /// anywhere else in the head is a 400 at once (such a head can never complete).
    static func parse(_ bytes: [UInt8]) -> Parse {
        guard let lineEnd = bytes.firstIndex(of: 0x0A) else {
            if hasBareCR(bytes[...]) { return .failure(400) }
            return bytes.count > maxRequestLine ? .failure(414) : .incomplete
        }
        if lineEnd > maxRequestLine { return .failure(414) }
        let line = trimCR(bytes[0..<lineEnd])
        if line.contains(0x0D) { return .failure(400) }
        // Headers end at the first empty line after the request line.
        var pos = lineEnd + 1
        var headerLines: [ArraySlice<UInt8>] = []
        while true {
            guard let nl = bytes[pos...].firstIndex(of: 0x0A) else {
                if hasBareCR(bytes[pos...]) { return .failure(400) }
                return bytes.count - (lineEnd + 1) > maxHeaderBytes ? .failure(431) : .incomplete
            }
            if nl + 1 - (lineEnd + 1) > maxHeaderBytes { return .failure(431) }
            let h = trimCR(bytes[pos..<nl])
            if h.contains(0x0D) { return .failure(400) }
            pos = nl + 1
            if h.isEmpty { break }
            headerLines.append(h)
        }
        guard let req = requestLine(line) else { return .failure(400) }
        var request = req
        for h in headerLines {
            guard let colon = h.firstIndex(of: UInt8(ascii: ":")), colon > h.startIndex else { return .failure(400) }
            let name = h[h.startIndex..<colon]
            guard name.allSatisfy(isTokenChar) else { return .failure(400) }
            let value = h[(colon + 1)...].drop { $0 == 0x20 || $0 == 0x09 }
            guard !value.contains(where: { $0 < 0x20 && $0 != 0x09 }) else { return .failure(400) }
            var v = String(decoding: value, as: UTF8.self)
            while v.last == " " || v.last == "\t" { v.removeLast() }
            request.headers.append((String(decoding: name, as: UTF8.self).lowercased(), v))
        }
        request.bodyOffset = pos
        // Request smuggling class: lengths that disagree, or a length beside a transfer coding,
        // mean another hop may have framed this request differently.
        let lengths = request.headers.filter { $0.name == "content-length" }
            .flatMap { $0.value.split(separator: ",", omittingEmptySubsequences: false) }
            .map { $0.trimmingSpaces() }
        if !lengths.isEmpty {
            guard lengths.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } && $0.utf8.count <= 15 }),
                  Set(lengths).count == 1 || Set(lengths.map { Int($0)! }).count == 1 else { return .failure(400) }
            if request.header("transfer-encoding") != nil { return .failure(400) }
            request.contentLength = Int(lengths[0])
        }
        return .request(request)
    }

    /// A CR that is followed by anything but LF (a CR at the very end may still get its LF).
    private static func hasBareCR(_ s: ArraySlice<UInt8>) -> Bool {
        var i = s.startIndex
        while let cr = s[i...].firstIndex(of: 0x0D) {
            let next = cr + 1
            if next < s.endIndex && s[next] != 0x0A { return true }
            i = next
            if i >= s.endIndex { break }
        }
        return false
    }

    private static func requestLine(_ line: ArraySlice<UInt8>) -> Request? {
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty,
              parts[0].allSatisfy(isTokenChar),
              !parts[1].contains(where: { $0 <= 0x20 || $0 == 0x7F }) else { return nil }
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version == "HTTP/1.0" || version == "HTTP/1.1" else { return nil }
        var uri = String(decoding: parts[1], as: UTF8.self)
        if !uri.hasPrefix("/") {
            // Absolute form "http://host/path": keep the path.
            guard uri.hasPrefix("http://") || uri.hasPrefix("https://"),
                  let sep = uri.firstIndex(of: ":") else { return nil }
            let rest = uri[uri.index(sep, offsetBy: 3)...]
            uri = rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
        }
        return Request(method: String(decoding: parts[0], as: UTF8.self), uri: uri, version: version, headers: [])
    }

    private static func trimCR(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        s.last == 0x0D ? s.dropLast() : s
    }

    /// RFC 9110 token characters.
    private static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    // MARK: - Responding

    /// The response for the bytes received so far, or nil when the request (head, or a posted
    /// form's body) is not complete. `admin` serves `stats admin` form posts.
    static func handle(_ bytes: [UInt8], config: StatsConfig, admin: (any RuntimeAdmin)? = nil,
                       snapshot: () -> StatsSnapshot) -> [UInt8]? {
        switch parse(bytes) {
        case .incomplete: return nil
        case .failure(let status): return error(status)
        case .request(let req) where req.method == "POST":
            return adminPost(req, bytes, config: config, admin: admin)
        case .request(let req): return respond(to: req, config: config, snapshot: snapshot)
        }
    }

    /// A `stats admin` form post: applied, then a 303 back to the page with the outcome.
    private static func adminPost(_ req: Request, _ bytes: [UInt8], config: StatsConfig,
                                  admin: (any RuntimeAdmin)?) -> [UInt8]? {
        guard config.admin, let admin else { return error(405, extra: [("allow", "GET, HEAD")]) }
        guard req.uri.hasPrefix(config.uri) else {
            return error(503, text: "No server is available to handle this request.")
        }
        if !config.auth.isEmpty, !authorized(req.header("authorization"), config.auth) {
            return error(401, extra: [("www-authenticate", "Basic realm=\"\(config.realm)\"")])
        }
        guard let length = req.contentLength else { return error(411) }
        guard length <= maxBodyBytes else { return error(413) }
        guard bytes.count >= req.bodyOffset + length else { return nil }
        let outcome = StatsAdminForm.parse(bytes[req.bodyOffset..<(req.bodyOffset + length)])
            .map { StatsAdminForm.apply($0, admin: admin) } ?? .error
        return response(303, type: "text/html", body: "", head: false,
                        extra: [("location", "\(config.uri);st=\(outcome.rawValue)")])
    }

    static func respond(to req: Request, config: StatsConfig, snapshot: () -> StatsSnapshot) -> [UInt8] {
        guard req.method == "GET" || req.method == "HEAD" else {
            return error(405, extra: [("allow", "GET, HEAD")])
        }
        let head = req.method == "HEAD"
        let path = req.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let isMetrics = path == "/metrics"
        guard isMetrics || req.uri.hasPrefix(config.uri) else {
            return error(503, text: "No server is available to handle this request.", head: head)
        }
        if !config.auth.isEmpty, !authorized(req.header("authorization"), config.auth) {
            return error(401, head: head, extra: [("www-authenticate", "Basic realm=\"\(config.realm)\"")])
        }
        if isMetrics {
            return response(200, type: StatsPrometheus.contentType, body: StatsPrometheus.render(snapshot()), head: head)
        }
        let suffix = req.uri.dropFirst(config.uri.count)
        var filter = StatsRows.Filter()
        filter.upOnly = suffix.contains(";up")
        filter.noMaint = suffix.contains(";no-maint")
        let noRefresh = suffix.contains(";norefresh")
        let refresh = noRefresh ? nil : config.refresh.map { max(1, ($0 + 999) / 1000) }
        var extra: [(String, String)] = []
        if let refresh { extra.append(("refresh", String(refresh))) }
        if suffix.contains(";csv") {
            return response(200, type: "text/plain", body: StatsCSV.render(snapshot(), filter: filter), head: head, extra: extra)
        }
        if suffix.contains(";json") {
            return response(200, type: "application/json", body: StatsJSON.render(snapshot(), filter: filter), head: head, extra: extra)
        }
        var opts = StatsHTML.Options(refreshSeconds: refresh, hideVersion: config.hideVersion, filter: filter)
        if config.admin {
            opts.adminURI = config.uri
            if let st = suffix.range(of: ";st=") {
                let code = suffix[st.upperBound...].prefix { $0 != ";" && $0 != "?" }
                opts.message = StatsAdminForm.Outcome(rawValue: String(code))?.message
            }
        }
        return response(200, type: "text/html", body: StatsHTML.render(snapshot(), options: opts), head: head, extra: extra)
    }

    /// Checks `Authorization: Basic <base64(user:pass)>` against the `stats auth` list.
    static func authorized(_ header: String?, _ creds: [StatsCredential]) -> Bool {
        guard let header else { return false }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let raw = Base64.decode(parts[1].trimmingSpaces()) else { return false }
        let pair = String(decoding: raw, as: UTF8.self)
        guard let colon = pair.firstIndex(of: ":") else { return false }
        let user = pair[..<colon], pass = pair[pair.index(after: colon)...]
        return creds.contains { constantTimeEqual($0.user, user) && constantTimeEqual($0.password, pass) }
    }

    /// Compares without an early exit on the first differing byte.
    private static func constantTimeEqual(_ a: String, _ b: Substring) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return diff == 0
    }

    /// `head`: the request was HEAD, so the reply keeps its headers (the length of the page a GET
    /// would get) and drops the body.
    static func error(_ status: Int, text: String? = nil, head: Bool = false, extra: [(String, String)] = []) -> [UInt8] {
        let body = "<html><body><h1>\(status) \(reason(status))</h1>\n\(text ?? reason(status)).\n</body></html>\n"
        return response(status, type: "text/html", body: body, head: head, extra: extra)
    }

    /// A complete HTTP/1.1 response with `Content-Length` and `Connection: close`.
    static func response(_ status: Int, type: String, body: String, head: Bool, extra: [(String, String)] = []) -> [UInt8] {
        let bodyBytes = Array(body.utf8)
        var h = "HTTP/1.1 \(status) \(reason(status))\r\ncache-control: no-cache\r\ncontent-type: \(type)\r\n"
        for (k, v) in extra { h += "\(k): \(v)\r\n" }
        h += "content-length: \(bodyBytes.count)\r\nconnection: close\r\n\r\n"
        var out = Array(h.utf8)
        if !head { out += bodyBytes }
        return out
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 303: "See Other"
        case 400: "Bad request"
        case 401: "Unauthorized"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Time-out"
        case 411: "Length Required"
        case 413: "Payload Too Large"
        case 414: "URI Too Long"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        default: "Error"
        }
    }
}

private extension Substring {
    func trimmingSpaces() -> Substring {
        var t = self
        while t.first == " " { t = t.dropFirst() }
        while t.last == " " { t = t.dropLast() }
        return t
    }
}

/// RFC 4648 base64 decoding, strict as HAProxy's: whole 4-character quanta, padding only at the
/// end, no stray bits. Enough for Basic auth without Foundation.
enum Base64 {
    static func decode(_ s: Substring) -> [UInt8]? {
        guard s.utf8.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        var acc: UInt32 = 0, bits = 0
        var padding = 0
        for c in s.utf8 {
            let v: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "/"): v = 63
            case UInt8(ascii: "="): padding += 1; continue
            default: return nil
            }
            if padding > 0 { return nil }
            acc = acc << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        // Padding must complete the last quantum exactly, and the bits it leaves must be zero.
        guard padding <= 2, bits == padding * 2, acc & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
