@testable import gproxy

/// (b) The stats listener's HTTP request parser and responder.
/// Invariants: never traps; a response is a well-formed HTTP/1.1 head whose content-length matches
/// its body (none for HEAD); nil only while the head (or a posted body) is incomplete, never once
/// more than `maxRequestBytes` arrived; parse failures answer 400/414/431; a request line longer
/// than the limit gets 414; a complete head parses the same whatever follows it, and any prefix
/// of it is incomplete or gets the same answer.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStatsHTTP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    let admin = FuzzAdmin()
    // Two listeners: the seed's (`stats uri /`) and one with auth + admin + refresh.
    var open = StatsConfig(enabled: true)
    open.uri = "/"
    var guarded = StatsConfig(enabled: true)
    guarded.uri = "/haproxy?stats"
    guarded.auth = [StatsCredential(user: "admin", password: "secret")]
    guarded.admin = true
    guarded.refresh = 5000

    let parsed = StatsHTTPHandler.parse(bytes)
    switch parsed {
    case .failure(let status):
        fuzzCheck([400, 414, 431].contains(status), "parse failure status \(status)")
    case .request(let req):
        fuzzCheck(req.uri.hasPrefix("/"), "uri \(req.uri)")
        fuzzCheck(req.version == "HTTP/1.0" || req.version == "HTTP/1.1", "version \(req.version)")
        fuzzCheck(req.bodyOffset <= bytes.count, "body offset \(req.bodyOffset) past \(bytes.count)")
        // The head is complete: what follows it cannot change it.
        let more = StatsHTTPHandler.parse(bytes + Array("GET / HTTP/1.1\r\n\r\n".utf8))
        fuzzCheck(more == parsed, "bytes after a complete head changed its parse")
    case .incomplete:
        fuzzCheck(bytes.count <= StatsHTTPHandler.maxRequestBytes, "incomplete after \(bytes.count) bytes")
    }
    if parsed != .incomplete, bytes.count > 1 {
        let prefix = StatsHTTPHandler.parse(Array(bytes[..<(bytes.count / 2)]))
        fuzzCheck(prefix == .incomplete || prefix == parsed, "half the bytes parse as \(prefix), all as \(parsed)")
    }

    for config in [open, guarded] {
        let reply = StatsHTTPHandler.handle(bytes, config: config, admin: admin, snapshot: admin.snapshot)
        guard let reply else {
            let postWaiting: Bool
            if case .request(let req) = parsed { postWaiting = req.method == "POST" } else { postWaiting = false }
            fuzzCheck(parsed == .incomplete || postWaiting, "no reply to a complete request \(parsed)")
            fuzzCheck(bytes.count <= StatsHTTPHandler.maxRequestBytes, "no reply after \(bytes.count) bytes")
            continue
        }
        let status = checkResponse(reply, head: isHead(parsed))
        if case .failure(let expected) = parsed { fuzzCheck(status == expected, "status \(status) for \(expected)") }
    }

    // The same bytes behind an over-long request line: always 414, whatever the rest is.
    if bytes.count % 8 == 0 {
        var long = Array("GET /".utf8)
        let filler = bytes.filter { $0 != 0x0A }
        while long.count <= StatsHTTPHandler.maxRequestLine {
            long += filler.isEmpty ? [UInt8(ascii: "a")] : filler
        }
        long += Array(" HTTP/1.1\r\n\r\n".utf8)
        let reply = StatsHTTPHandler.handle(long, config: guarded, admin: admin, snapshot: admin.snapshot)
        fuzzCheck(reply.map { checkResponse($0, head: false) } == 414, "an over-long request line not answered 414")
    }
    return 0
}

private func isHead(_ parse: StatsHTTPHandler.Parse) -> Bool {
    if case .request(let req) = parse { return req.method == "HEAD" }
    return false
}

/// Checks the response's shape and returns its status.
private func checkResponse(_ reply: [UInt8], head: Bool) -> Int {
    let prefix = Array("HTTP/1.1 ".utf8)
    fuzzCheck(reply.starts(with: prefix) && reply.count >= 12, "response does not start with HTTP/1.1")
    let code = reply[9..<12]
    fuzzCheck(code.allSatisfy { (0x30...0x39).contains($0) }, "status is not 3 digits")
    let status = Int(String(decoding: code, as: UTF8.self))!
    guard let end = HTTPCheckEvaluator.firstIndex(of: [13, 10, 13, 10], in: reply) else {
        fuzzCheck(false, "response head has no end")
        return status
    }
    let headText = String(decoding: reply[..<end], as: UTF8.self)
    let lengths = headText.split(separator: "\r\n").filter { $0.hasPrefix("content-length: ") }
    fuzzCheck(lengths.count == 1, "content-length headers: \(lengths.count)")
    let declared = Int(lengths[0].dropFirst("content-length: ".count)) ?? -1
    let body = reply.count - (end + 4)
    // A HEAD request's 200 carries no body; its error replies currently do (see Fuzz/README.md).
    fuzzCheck(body == declared || (head && body == 0), "content-length \(declared), body \(body), head \(head)")
    // No header value carries a bare CR or LF (response splitting).
    fuzzCheck(!reply[..<end].enumerated().contains { i, c in
        (c == 10 && (i == 0 || reply[i - 1] != 13)) || (c == 13 && reply[i + 1] != 10)
    }, "bare CR or LF in the response head")
    return status
}
