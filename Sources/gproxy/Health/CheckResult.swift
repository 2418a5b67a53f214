import Foundation

/// The outcome of one health check, classified as HAProxy does (L4CON, L7STS, ...).
struct CheckResult: Equatable, Sendable {
    var status: CheckStatusCode
    /// HTTP status for L7 results with a parsed status line.
    var code: Int?
    /// Reason phrase or error text (HAProxy's `info:`), if any.
    var info: String?
    var durationMs: Int

    var passed: Bool { status == .l4ok || status == .l7ok }

    /// `reason: Layer7 wrong status, code: 503, info: "Service Unavailable", check duration: 2ms`
    var logDetail: String {
        var s = "reason: \(status.description)"
        if let code { s += ", code: \(code)" }
        if let info, !info.isEmpty { s += ", info: \"\(info)\"" }
        return s + ", check duration: \(durationMs)ms"
    }
}

/// Reads an HTTP check response and judges it against `http-check expect` rules.
enum HTTPCheckEvaluator {
    struct StatusLine: Equatable {
        var code: Int
        var reason: String
    }

    /// The status line and whether the header block is complete; nil when the bytes are not HTTP.
    static func parse(_ bytes: [UInt8]) -> (line: StatusLine, headerEnd: Int?)? {
        guard let eol = firstIndex(of: [13, 10], in: bytes) ?? bytes.firstIndex(of: 10) else { return nil }
        let text = String(decoding: bytes[0..<eol], as: UTF8.self)
        guard text.hasPrefix("HTTP/") else { return nil }
        let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        // Three digits, as HAProxy requires: Int() alone would take "-03" or "+20".
        guard parts.count >= 2, parts[1].utf8.count == 3, parts[1].utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              let code = Int(parts[1]) else { return nil }
        let reason = parts.count > 2 ? String(parts[2]) : ""
        let end = firstIndex(of: [13, 10, 13, 10], in: bytes).map { $0 + 4 }
        return (StatusLine(code: code, reason: reason), end)
    }

    /// Does the response need its body (an `expect string` rule)?
    static func needsBody(_ expects: [HTTPCheckExpect]) -> Bool {
        expects.contains { if case .string = $0.matcher { return true } else { return false } }
    }

    /// Judges a response. `complete` = the peer closed or everything needed has arrived.
    static func evaluate(_ bytes: [UInt8], expects: [HTTPCheckExpect], complete: Bool, durationMs: Int) -> CheckResult? {
        guard let (line, headerEnd) = parse(bytes) else {
            // Not HTTP (or nothing at all) once the peer is done: invalid response.
            if complete || bytes.count >= 5 && !bytes.starts(with: Array("HTTP/".utf8)) {
                return CheckResult(status: .l7response, code: nil, info: nil, durationMs: durationMs)
            }
            return nil
        }
        guard let headerEnd else {
            return complete ? CheckResult(status: .l7response, code: nil, info: nil, durationMs: durationMs) : nil
        }
        if needsBody(expects) && !complete { return nil }
        let body = Array(bytes[headerEnd...])
        if expects.isEmpty {
            let ok = (200..<400).contains(line.code)
            return CheckResult(status: ok ? .l7ok : .l7status, code: line.code, info: ok ? nil : line.reason,
                               durationMs: durationMs)
        }
        for rule in expects {
            var matched: Bool
            var failStatus = CheckStatusCode.l7status
            var failInfo: String? = line.reason
            switch rule.matcher {
            case .status(let ranges):
                matched = ranges.contains { $0.contains(line.code) }
            case .rstatus(let pattern):
                let code = String(line.code)
                matched = (try? NSRegularExpression(pattern: pattern))
                    .map { $0.firstMatch(in: code, range: NSRange(location: 0, length: code.utf16.count)) != nil } ?? false
            case .string(let needle):
                failStatus = .l7response
                if body.isEmpty {
                    matched = false
                    failInfo = "HTTP content check could not find a response body"
                } else {
                    matched = firstIndex(of: Array(needle.utf8), in: body) != nil
                    failInfo = "HTTP content check did not match"
                }
            }
            if rule.negated { matched.toggle() }
            if !matched {
                return CheckResult(status: failStatus, code: line.code, info: failInfo, durationMs: durationMs)
            }
        }
        return CheckResult(status: .l7ok, code: line.code, info: nil, durationMs: durationMs)
    }

    static func firstIndex(of needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] {
            if Array(hay[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }
}
