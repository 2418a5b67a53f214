@testable import gproxy

/// (f) The health checker's HTTP response parser and `http-check expect` judge.
/// Invariants: never traps; once the peer is done there is always a verdict; a verdict given
/// early is the final one, and more bytes cannot change it (unless a body rule waits for the
/// end); a parsed status is a 3-digit code; L7OK only for a passing status; only L7 statuses.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckResponse(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    if let (line, headerEnd) = HTTPCheckEvaluator.parse(bytes) {
        fuzzCheck((0...999).contains(line.code), "status code \(line.code)")
        if let headerEnd { fuzzCheck(headerEnd <= bytes.count, "header end \(headerEnd) past \(bytes.count)") }
    }
    let rules: [[HTTPCheckExpect]] = [
        [],
        [HTTPCheckExpect(matcher: .status([200...200]))],
        [HTTPCheckExpect(matcher: .status([200...299, 301...302]), negated: true)],
        [HTTPCheckExpect(matcher: .rstatus("^2[0-9]{2}$"))],
        [HTTPCheckExpect(matcher: .string("\"role\": \"primary\""))],
        [HTTPCheckExpect(matcher: .status([200...200])), HTTPCheckExpect(matcher: .string("running"), negated: true)],
    ]
    for expects in rules {
        let final = HTTPCheckEvaluator.evaluate(bytes, expects: expects, complete: true, durationMs: 1)
        guard let final else {
            fuzzCheck(false, "no verdict on a complete response")
            continue
        }
        fuzzCheck([.l7ok, .l7status, .l7response].contains(final.status), "status \(final.status)")
        if final.status == .l7ok, expects.isEmpty, let code = final.code {
            fuzzCheck((200..<400).contains(code), "L7OK with \(code)")
        }
        if let early = HTTPCheckEvaluator.evaluate(bytes, expects: expects, complete: false, durationMs: 1) {
            fuzzCheck(early == final, "early verdict \(early) then \(final)")
            let more = HTTPCheckEvaluator.evaluate(bytes + Array("\r\nX: 1\r\n\r\nbody".utf8), expects: expects,
                                                   complete: false, durationMs: 1)
            fuzzCheck(more == early, "more bytes changed the verdict \(early) to \(String(describing: more))")
        }
        fuzzCheck(!final.logDetail.isEmpty, "empty log detail")
    }
    return 0
}
