import Testing
@testable import gproxy

/// Joins lines with LF and ends the text with LF, so line numbers are easy to read off a case.
private func cfg(_ lines: String...) -> String { lines.joined(separator: "\n") + "\n" }

private let tooManyWords = "  " + (1...65).map { "w\($0)" }.joined(separator: " ")

/// One refused configuration and every diagnostic it must produce, rendered `file:line: message`.
struct BadConfig: Sendable, CustomTestStringConvertible {
    var name: String
    var text: String
    var expected: [String]
    var testDescription: String { name }
    init(_ name: String, _ text: String, _ expected: String...) {
        self.name = name
        self.text = text
        self.expected = expected
    }
}

private let badConfigs: [BadConfig] = [
    BadConfig("unresolvable server address", cfg("backend b", "  server s1 no-such-host.invalid:5432",
                                                  "  server s2 127.0.0.300:5432"),
              "t.cfg:2: 'server b/s1' : could not resolve address 'no-such-host.invalid'.",
              "t.cfg:3: 'server b/s2' : could not resolve address '127.0.0.300'."),
    BadConfig("server names outside HAProxy's alphabet",
              cfg("backend b", "  server \"s 1\" 127.0.0.1:1", "  server s,2 127.0.0.1:1", "  server s<3 127.0.0.1:1",
                  "  server \"s\\n4\" 127.0.0.1:1", "  server \"s\\xff5\" 127.0.0.1:1", "  server ok:6.-_x 127.0.0.1:1"),
              "t.cfg:2: character ' ' is not permitted in server name 's 1'.",
              "t.cfg:3: character ',' is not permitted in server name 's,2'.",
              "t.cfg:4: character '<' is not permitted in server name 's<3'.",
              "t.cfg:5: character '\n' is not permitted in server name 's\n4'.",
              "t.cfg:6: character '\u{FFFD}' is not permitted in server name 's\u{FFFD}5'."),
    BadConfig("proxy names outside HAProxy's alphabet",
              cfg("listen \"b c\"", "  bind :1", "backend d<e", "frontend \"f\\xffg\"", "  bind :2", "  default_backend x",
                  "backend x"),
              "t.cfg:1: character ' ' is not permitted in 'listen' name 'b c'.",
              "t.cfg:3: character '<' is not permitted in 'backend' name 'd<e'.",
              "t.cfg:4: character '\u{FFFD}' is not permitted in 'frontend' name 'f\u{FFFD}g'."),
    BadConfig("invalid rstatus regex", cfg("backend b", "  option httpchk", "  http-check expect rstatus ^(2",
                                           "  server s1 127.0.0.1:1 check"),
              "t.cfg:3: 'http-check expect' : regex '^(2' is invalid."),
    BadConfig("log len below 80", cfg("global", "  log stdout len 79 local0"),
              "t.cfg:2: log : invalid log length '79', must be between 80 and 65535"),
    BadConfig("log len not a number", cfg("global", "  log stdout len abc local0"),
              "t.cfg:2: log : invalid log length 'abc', must be between 80 and 65535"),
    BadConfig("maxpipes not a number", cfg("global", "  maxpipes lots"),
              "t.cfg:2: 'maxpipes' expects a positive integer argument."),
    BadConfig("stats admin without condition", cfg("listen s", "  mode http", "  bind :1", "  stats enable", "  stats admin"),
              "t.cfg:5: 'stats admin' requires either 'if' or 'unless' followed by a condition."),
    BadConfig("stats admin with an ACL", cfg("listen s", "  mode http", "  bind :1", "  stats enable", "  stats admin if LOCALHOST"),
              "t.cfg:5: keyword 'stats admin if LOCALHOST' is not implemented by gproxy"),
    BadConfig("load-server-state-from-file argument", cfg("backend b", "  load-server-state-from-file always"),
              "t.cfg:2: 'load-server-state-from-file' expects 'global', 'local' or 'none'. Got 'always'"),
    BadConfig("unknown keyword", cfg("listen a", "  bind :1", "  foobar"),
              "t.cfg:3: unknown keyword 'foobar' in 'listen' section"),
    BadConfig("not implemented option", cfg("listen a", "  bind :1", "  option forwardfor"),
              "t.cfg:3: keyword 'option forwardfor' is not implemented by gproxy"),
    BadConfig("not implemented keyword", cfg("frontend f", "  bind :1", "  default_backend b", "  http-request deny",
                                             "backend b"),
              "t.cfg:4: keyword 'http-request' is not implemented by gproxy"),
    BadConfig("not implemented global", cfg("global", "  chroot /var/lib/haproxy"),
              "t.cfg:2: keyword 'chroot' is not implemented by gproxy"),
    BadConfig("bad time suffix", cfg("listen a", "  bind :1", "  timeout connect 3q"),
              "t.cfg:3: unexpected character 'q' in 'timeout connect'"),
    BadConfig("missing port", cfg("listen a", "  bind 127.0.0.1"),
              "t.cfg:2: 'bind' : missing port specification in '127.0.0.1'"),
    BadConfig("ipv6 without port", cfg("listen a", "  bind ::1"),
              "t.cfg:2: 'bind' : missing port specification in '::1'"),
    BadConfig("unset variable in bind", cfg("listen a", "  bind 127.0.0.1:${NOPE}"),
              "t.cfg:2: 'bind' : missing port specification in '127.0.0.1:${NOPE}'"),
    BadConfig("port 0", cfg("listen a", "  bind :0"), "t.cfg:2: 'bind' : invalid port '0'"),
    BadConfig("port 70000", cfg("listen a", "  bind *:70000"), "t.cfg:2: 'bind' : invalid port '70000'"),
    BadConfig("bad range", cfg("listen a", "  bind 127.0.0.1:45010-45005"),
              "t.cfg:2: 'bind' : invalid port range '45010-45005'"),
    BadConfig("spaced comma list", cfg("listen a", "  bind 127.0.0.1:1 , 127.0.0.1:2"),
              "t.cfg:2: 'bind 127.0.0.1:1' unknown keyword ','."),
    BadConfig("weight 300", cfg("backend b", "  server s4 127.0.0.1:1 weight 300"),
              "t.cfg:2: 'server b/s4' : weight of server s4 is not within 0 and 256 (300)."),
    BadConfig("rise 0", cfg("backend b", "  server s1 127.0.0.1:1 rise 0"),
              "t.cfg:2: 'server b/s1' : 'rise' has to be > 0."),
    BadConfig("inter 0", cfg("backend b", "  server s1 127.0.0.1:1 check inter 0"),
              "t.cfg:2: 'server b/s1' : invalid value 0 for argument 'inter'"),
    BadConfig("server typo", cfg("backend b", "  server s1 127.0.0.1:1 chek"),
              "t.cfg:2: 'server b/s1' : unknown keyword 'chek'"),
    BadConfig("server not implemented", cfg("backend b", "  server s1 127.0.0.1:1 send-proxy"),
              "t.cfg:2: 'server b/s1' : keyword 'send-proxy' is not implemented by gproxy"),
    BadConfig("server port offset", cfg("backend b", "  server s1 127.0.0.1:+1"),
              "t.cfg:2: 'server b/s1' : port offsets ('127.0.0.1:+1') are not implemented by gproxy"),
    BadConfig("server port range", cfg("backend b", "  server s1 127.0.0.1:1-2"),
              "t.cfg:2: 'server b/s1' : port range not permitted here in '127.0.0.1:1-2'"),
    BadConfig("check with no port at all", cfg("backend b", "  server s1 127.0.0.1 check"),
              "t.cfg:2: 'server b/s1' : server 's1' has neither service port nor check port, "
                + "and a health check was requested."),
    BadConfig("server without address", cfg("backend b", "  server s1"),
              "t.cfg:2: 'server' expects <name> and <addr>[:<port>] as arguments."),
    BadConfig("missing LF", "listen a\n  bind :1",
              "t.cfg:2: Missing LF on last line, file might have been truncated at position 10."),
    BadConfig("NUL byte", "listen a\n  bind :1\u{0}x\n", "t.cfg:2: Stray NUL character at position 10."),
    BadConfig("unmatched brace", cfg("listen a", "  bind \"127.0.0.1:${PORT\""),
              "t.cfg:2: unmatched brace in environment variable name at position 20"),
    BadConfig("unmatched quote", cfg("listen a", "  bind \"127.0.0.1:1"),
              "t.cfg:2: unmatched quote at position 8"),
    BadConfig("duplicate server", cfg("backend b", "  server s1 127.0.0.1:1", "  server s1 127.0.0.1:2"),
              "t.cfg:3: proxy 'b', another server named 's1' was already defined at line 2, please use distinct names."),
    BadConfig("duplicate proxy", cfg("listen a", "  bind :1", "listen a", "  bind :2"),
              "t.cfg:3: proxy 'a' has the same name as proxy 'a' declared at t.cfg:1."),
    BadConfig("unimplemented section", cfg("userlist u", "  user x password y", "listen a", "  bind :1"),
              "t.cfg:1: section 'userlist' is not implemented by gproxy"),
    BadConfig("keyword out of section", cfg("foo"), "t.cfg:1: unknown keyword 'foo' out of section."),
    BadConfig("use_backend to missing backend", cfg("frontend f", "  bind :1", "  use_backend nope"),
              "t.cfg:3: Proxy 'f': unable to find required use_backend: 'nope'."),
    BadConfig("default_backend to a frontend", cfg("frontend f", "  bind :1", "  default_backend g",
                                                   "frontend g", "  bind :2", "  default_backend b", "backend b"),
              "t.cfg:3: Proxy 'f': unable to find required default_backend: 'g'."),
    BadConfig("conditional use_backend", cfg("frontend f", "  bind :1", "  use_backend b if TRUE",
                                             "  default_backend b", "backend b"),
              "t.cfg:3: conditional use_backend is not implemented by gproxy"),
    BadConfig("bad balance", cfg("backend b", "  balance foo"),
              "t.cfg:2: balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', "
                + "'url_param', 'hdr(name)' and 'rdp-cookie(name)' options."),
    BadConfig("balance uri", cfg("backend b", "  balance uri"), "t.cfg:2: balance 'uri' is not implemented by gproxy"),
    BadConfig("mode http without stats", cfg("listen a", "  mode http", "  bind :1"),
              "t.cfg:2: proxy 'a' : 'mode http' is only supported for the stats page and 'monitor-uri'; HTTP "
                + "proxying is not implemented by gproxy (TCP only)"),
    BadConfig("stats scope", cfg("listen s", "  mode http", "  bind :1", "  stats enable", "  stats scope pg"),
              "t.cfg:5: keyword 'stats scope' is not implemented by gproxy"),
    BadConfig("trailing backslash is no continuation", cfg("backend b", "  server s1 127.0.0.1:1 \\", "  check"),
              "t.cfg:2: 'server b/s1' : unknown keyword '\\'",
              "t.cfg:3: unknown keyword 'check' in 'backend' section"),
    BadConfig("too many words", cfg("listen a", tooManyWords),
              "t.cfg:2: too many words, truncating after word 64, position 244: <w64>."),
    BadConfig("frontend without bind", cfg("frontend f", "  default_backend b", "backend b"),
              "t.cfg:1: frontend 'f' has no 'bind' directive. Please declare it as a backend if this was intended."),
    BadConfig("frontend without backend", cfg("frontend f", "  bind :1"),
              "t.cfg:1: frontend 'f' has no backend to forward connections to "
                + "(neither 'default_backend' nor 'use_backend')."),
    BadConfig("unknown option", cfg("listen a", "  bind :1", "  option foo"), "t.cfg:3: unknown option 'foo'."),
    BadConfig("unknown mode", cfg("listen a", "  bind :1", "  mode tcpx"), "t.cfg:3: unknown proxy mode 'tcpx'."),
    BadConfig("negation of a non-option", cfg("listen a", "  bind :1", "  no balance"),
              "t.cfg:3: negation/default currently supported only for options, log, busy-polling, set-dumpable, "
                + "strict-limits, insecure-fork-wanted and numa-cpu-mapping."),
    BadConfig("all errors are collected", cfg("listen a", "  bind :0", "  timeout client 1x", "  retries",
                                              "  server s1 127.0.0.1:1 weight -1"),
              "t.cfg:2: 'bind' : invalid port '0'",
              "t.cfg:3: unexpected character 'x' in 'timeout client'",
              "t.cfg:4: 'retries' expects an integer argument.",
              "t.cfg:5: 'server a/s1' : weight of server s1 is not within 0 and 256 (-1)."),
]

@Suite struct ConfigErrorTests {
    @Test(arguments: badConfigs)
    func refused(_ bad: BadConfig) {
        do {
            let config = try ConfigLoader.parse(text: bad.text, file: "t.cfg")
            Issue.record("accepted: \(config.proxies.map(\.name))")
        } catch {
            #expect(error.errors.map(\.description) == bad.expected)
        }
    }

    @Test func stopsAfterFiftyFatalErrors() {
        let text = "listen a\n" + String(repeating: "  nope\n", count: 60)
        do {
            _ = try ConfigLoader.parse(text: text, file: "t.cfg")
            Issue.record("accepted")
        } catch {
            #expect(error.errors.count == 51)
            #expect(error.errors.last?.description == "t.cfg:52: too many fatal errors (50), stopping now.")
        }
    }
}
