import Testing
@testable import gproxy

/// Bad input never crashes: randomised configs and HTTP requests built from the grammar's own
/// pieces (plus junk) must give a parse result or an error, never a trap.
@Suite struct BadInputTests {
    /// Deterministic generator so a failure can be reproduced.
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        mutating func pick<T>(_ xs: [T]) -> T { xs[Int(next() % UInt64(xs.count))] }
    }

    static let words = [
        "global", "defaults", "listen", "frontend", "backend", "x", "bind", "*:5000", ":::5001", "[::1]:0",
        "127.0.0.1:70000", "1.2.3.4:10-5", "server", "s1", "127.0.0.1:1", "check", "port", "8008", "inter",
        "3s", "0", "-1", "99999999999999999999", "rise", "fall", "weight", "300", "maxconn", "abc", "timeout",
        "client", "connect", "3q", "option", "httpchk", "OPTIONS", "/replica", "http-check", "expect", "!",
        "status", "200-", "rstatus", "(", "string", "balance", "roundrobin", "uri", "mode", "tcp", "http",
        "stats", "enable", "auth", "u:p", "default-server", "use_backend", "default_backend", "patroni",
        "primary", "replica", "max-lag", "16XB", "discover", "max-members", "2000", "log", "global",
        "stdout", "local0", "\"quoted word\"", "'single'", "\\#", "${HOME}", "${NOPE-default}", "${", "#c",
        "\\x4", "\u{0}", "ü", "nbthread", "65", "tune.pipesize", "spread-checks", "51",
    ]

    @Test func randomConfigsParseOrFailWithLocatedErrors() {
        var rng = Rng(state: 0x9E37_79B9_7F4A_7C15)
        for _ in 0..<3000 {
            var text = ""
            for _ in 0..<(1 + Int(rng.next() % 12)) {
                let n = Int(rng.next() % 7)
                text += (0..<n).map { _ in rng.pick(Self.words) }.joined(separator: rng.pick([" ", "\t", "  "])) + "\n"
            }
            if rng.next() % 10 == 0 { text.removeLast() }  // a missing final LF
            do {
                _ = try ConfigLoader.parse(text: text, file: "fuzz.cfg")
            } catch {
                #expect(!error.errors.isEmpty)
                #expect(error.errors.allSatisfy { $0.description.hasPrefix("fuzz.cfg:") })
            }
        }
    }

    @Test func randomHTTPRequestsToTheStatsPageGetAnAnswerOrWaitForMore() {
        var rng = Rng(state: 42)
        let pieces = ["GET", "POST", "HEAD", " ", "/", ";csv", ";json", "/metrics", "?x=1", " HTTP/1.1", " HTTP/9",
                      "\r\n", "\n", "Host: a", "Authorization: Basic !!!", "Authorization: Basic dTpw", ":", "\u{7F}",
                      String(repeating: "A", count: 9000), "\r\n\r\n"]
        var config = StatsConfig()
        config.enabled = true
        config.uri = "/"
        config.auth = [StatsCredential(user: "u", password: "p")]
        for _ in 0..<2000 {
            let n = 1 + Int(rng.next() % 10)
            let request = Array((0..<n).map { _ in rng.pick(pieces) }.joined().utf8)
            if let reply = StatsHTTPHandler.handle(request, config: config, snapshot: { StatsFixtures.snapshot }) {
                #expect(String(decoding: reply.prefix(9), as: UTF8.self) == "HTTP/1.1 " ||
                        String(decoding: reply.prefix(9), as: UTF8.self) == "HTTP/1.0 ")
            }
        }
    }
}
