import Testing
@testable import gproxy

/// Parses and fails the test with every diagnostic if the config is refused.
func parseOK(_ text: String, env: [String: String] = [:]) throws -> GProxyConfig {
    do {
        return try ConfigLoader.parse(text: text, file: "t.cfg", environment: env)
    } catch {
        Issue.record("unexpected errors:\n\(error.description)")
        throw error
    }
}

@Suite struct ConfigSemanticsTests {
    /// HAProxy's `bind ... defer-accept` is taken per bind line into the engine's frontend; on a
    /// stats listener (mode http) it is not applied, and the config says so.
    @Test func deferAcceptReachesTheEngineAndIsAWarningOnStats() throws {
        let config = try parseOK("""
            defaults
                mode tcp
                timeout connect 1s
                timeout client 1s
                timeout server 1s
            listen a
                bind 127.0.0.1:6000 defer-accept
                bind 127.0.0.1:6001
                server s 127.0.0.1:1
            listen stats
                mode http
                bind 127.0.0.1:7000 defer-accept
                stats enable

            """)
        let a = try #require(config.proxy(named: "a"))
        #expect(a.binds.map(\.deferAccept) == [true, false])
        #expect(config.warnings.contains { $0.line == 10 && $0.message.contains("defer-accept") })
        let plan = try EngineBuilder(config: config).plan(workers: 1, globalMaxconn: 100)
        let fe = try #require(plan.spec.frontends.first { $0.name == "a" })
        #expect(fe.deferAccept == [true, false])
        // Any other option on the line is still refused.
        #expect(throws: ConfigErrors.self) {
            try ConfigLoader.parse(text: "listen b\n    bind 127.0.0.1:6002 defer-accept tfo\n    server s 127.0.0.1:1\n",
                                   file: "t.cfg", environment: [:])
        }
    }

    /// cfg §1.7's observed example, exactly.
    @Test func defaultServerBuildsUp() throws {
        let config = try parseOK("""
            defaults
                default-server rise 5 fall 7 weight 20
            backend b
                server s0 127.0.0.1:1
                default-server rise 3
                server s1 127.0.0.1:2
                default-server fall 9
                server s2 127.0.0.1:3 rise 1
                default-server maxconn 7
                server s3 127.0.0.1:4 maxconn 0

            """)
        let s = try #require(config.proxy(named: "b")).servers
        #expect(s.map(\.rise) == [5, 3, 1, 3])
        #expect(s.map(\.fall) == [7, 7, 9, 9])
        #expect(s.map(\.weight) == [20, 20, 20, 20])
        #expect(s.map(\.maxconn) == [0, 0, 0, 0])
    }

    @Test func defaultServerAppliesOnlyAfterIt() throws {
        let config = try parseOK("""
            backend b
                server s0 127.0.0.1:1
                default-server inter 3s check port 8008 backup
                server s1 127.0.0.1:2 no-check no-backup
                server s2 127.0.0.1:3

            """)
        let s = try #require(config.proxy(named: "b")).servers
        #expect(s.map(\.inter) == [2000, 3000, 3000])
        #expect(s.map(\.check) == [false, false, true])
        #expect(s.map(\.backup) == [false, false, true])
        #expect(s.map(\.checkPort) == [nil, 8008, 8008])
    }

    @Test func defaultsInheritanceAndReset() throws {
        let config = try parseOK("""
            defaults
                timeout connect 5s
                timeout client 1m
                timeout server 1m
                retries 5
                option redispatch
                balance leastconn
            listen a
                bind :1
                server s 127.0.0.1:2
            defaults
                timeout client 10s
            backend b
                server s 127.0.0.1:2
            frontend f
                bind :3
                default_backend b

            """)
        let a = try #require(config.proxy(named: "a"))
        #expect(a.timeouts == ProxyTimeouts(connect: 5000, client: 60000, server: 60000))
        #expect(a.retries == 5)
        #expect(a.redispatch)
        #expect(a.balance == .leastconn)
        let b = try #require(config.proxy(named: "b"))
        // The second defaults reset everything; a backend does not take the frontend-only client timeout.
        #expect(b.timeouts == ProxyTimeouts())
        #expect(b.retries == 3)
        #expect(b.redispatch == false)
        #expect(b.balance == .roundrobin)
        let f = try #require(config.proxy(named: "f"))
        #expect(f.timeouts == ProxyTimeouts(client: 10000))
        #expect(f.targetBackendName == "b")
    }

    @Test func namedDefaults() throws {
        let config = try parseOK("""
            defaults base
                timeout connect 1s
                default-server inter 7s
            defaults other from base
                timeout server 2s
            defaults
                timeout connect 9s
            backend x from base
                server s 127.0.0.1:1
            backend y from other
                server s 127.0.0.1:1
            backend z
                server s 127.0.0.1:1

            """)
        #expect(config.proxy(named: "x")?.timeouts == ProxyTimeouts(connect: 1000))
        #expect(config.proxy(named: "x")?.servers.first?.inter == 7000)
        #expect(config.proxy(named: "y")?.timeouts == ProxyTimeouts(connect: 1000, server: 2000))
        #expect(config.proxy(named: "z")?.timeouts == ProxyTimeouts(connect: 9000))
        #expect(config.proxy(named: "z")?.servers.first?.inter == 2000)
    }

    @Test func environmentExpansion() throws {
        let env = ["PORT": "6000", "HOST": "127.0.0.2", "EMPTY": "", "URI": "/p q"]
        let config = try parseOK("""
            listen a
                bind 127.0.0.1:${PORT}
                bind "${HOST}:$PORT"
                option httpchk GET "${URI}"
                stats realm "${NOPE-def ault}"
                stats auth "u${EMPTY-x}:p"
                server s ${HOST}:${PORT}

            """, env: env)
        let a = try #require(config.proxy(named: "a"))
        #expect(a.binds == [BindAddress(host: "127.0.0.1", port: 6000), BindAddress(host: "127.0.0.2", port: 6000)])
        #expect(a.httpCheck?.uri == "/p q")
        #expect(a.stats.realm == "def ault")
        #expect(a.stats.auth == [StatsCredential(user: "u", password: "p")])
        #expect(a.servers.first?.host == "127.0.0.2")
        #expect(a.servers.first?.port == 6000)
    }

    @Test(arguments: [
        (#"a b\ c"#, ["a", "b c"]),
        (#"a "b c" d"#, ["a", "b c", "d"]),
        (#"a 'b $X c'"#, ["a", "b $X c"]),
        (#"a "x$X""#, ["a", "xv"]),
        (#"a "b c"'d e'f"#, ["a", "b cd ef"]),
        (##"a \# b # comment"##, ["a", "#", "b"]),
        (##"a "#not" 'comment'"##, ["a", "#not", "comment"]),
        (#"a \x41\t\\ \" \'"#, ["a", "A\t\\", "\"", "'"]),
        (#"a \q"#, ["a", #"\q"#]),
        (#"server s 1.2.3.4 \"#, ["server", "s", "1.2.3.4", "\\"]),
        (#"a "" b"#, ["a", "", "b"]),
        (#"a b """#, ["a", "b"]),  // a trailing empty word is dropped...
        (#"a b "" "#, ["a", "b", ""]),  // ...unless a blank follows it (parse_line() quirk)
        (#"   # only comment"#, []),
        (#"a "${L[*]}" b"#, ["a", "x", "y", "b"]),
        (#"a "${.LINE}""#, ["a", "7"]),
    ])
    func tokenizer(line: String, expected: [String]) throws {
        let context = ExpansionContext(environment: ["X": "v", "L": "x  y"], file: "t.cfg", line: 7)
        let words = try ConfigTokenizer.words(of: ArraySlice(Array(line.utf8)), context: context)
        #expect(words == expected)
    }

    @Test(arguments: [
        ("*:5000", [BindAddress(host: "0.0.0.0", port: 5000)]),
        (":5000", [BindAddress(host: "0.0.0.0", port: 5000)]),
        ("0.0.0.0:5000", [BindAddress(host: "0.0.0.0", port: 5000)]),
        ("127.0.0.1:5000", [BindAddress(host: "127.0.0.1", port: 5000)]),
        ("[::1]:5000", [BindAddress(host: "::1", port: 5000)]),
        (":::5000", [BindAddress(host: "::", port: 5000)]),
        ("[::]:5000", [BindAddress(host: "::", port: 5000)]),
        ("::1:5000", [BindAddress(host: "::1", port: 5000)]),
        ("ipv4@:5000", [BindAddress(host: "0.0.0.0", port: 5000)]),
        ("ipv6@:5000", [BindAddress(host: "::", port: 5000)]),
        ("localhost:5000", [BindAddress(host: "127.0.0.1", port: 5000)]),
        ("1.2.3.4:5000,5.6.7.8:5001", [BindAddress(host: "1.2.3.4", port: 5000),
                                       BindAddress(host: "5.6.7.8", port: 5001)]),
        ("127.0.0.1:45010-45012", [BindAddress(host: "127.0.0.1", port: 45010),
                                   BindAddress(host: "127.0.0.1", port: 45011),
                                   BindAddress(host: "127.0.0.1", port: 45012)]),
    ])
    func bindForms(text: String, expected: [BindAddress]) throws {
        let result = try ConfigAddress.parseBind(text, environment: [:]).get()
        #expect(result == expected)
    }

    @Test(arguments: [
        ("5000", 5000), ("3s", 3000), ("1500us", 2), ("1us", 1), ("250ms", 250), ("2m", 120_000),
        ("1h", 3_600_000), ("1d", 86_400_000), ("0", 0), ("3q", nil), ("s", nil), ("25d", nil),
    ] as [(String, Int?)])
    func timeUnits(text: String, expected: Int?) {
        #expect((try? ConfigValues.parseTime(text).milliseconds) == expected)
    }

    @Test func statsRefreshDefaultsToSeconds() throws {
        let config = try parseOK("""
            listen stats
                mode http
                bind :7000
                stats refresh 5
                stats hide-version

            """)
        let stats = try #require(config.proxy(named: "stats")).stats
        #expect(stats == StatsConfig(enabled: true, refresh: 5000, hideVersion: true))
    }

    @Test func globalSection() throws {
        let config = try parseOK("""
            global
                maxconn 4096
                nbthread 2
                log 127.0.0.1:5140 local0 info
                log stdout format raw len 2048 daemon
                pidfile /run/gproxy.pid
                daemon
                stats socket /run/gproxy.sock mode 600 level operator expose-fd listeners
                spread-checks 5
            global
                log stderr local1
            listen a
                bind :1
                log global
                option tcplog
                timeout client 1s
                timeout connect 1s
                timeout server 1s
                server s 10.0.0.1
                server t localhost:5432 weight 0 id 7 init-state fully-down disabled

            """)
        let g = config.global
        #expect(g.maxconn == 4096)
        #expect(g.nbthread == 2)
        #expect(g.logTargets == [
            LogTarget(destination: .udp(host: "127.0.0.1", port: 5140), facility: "local0", level: "info"),
            LogTarget(destination: .stdout, facility: "daemon", format: "raw", maxLength: 2048),
            LogTarget(destination: .stderr, facility: "local1"),
        ])
        #expect(g.pidfile == "/run/gproxy.pid")
        #expect(g.daemon)
        #expect(g.statsSockets == [StatsSocketConfig(path: "/run/gproxy.sock", mode: 0o600, level: "operator",
                                                     file: "t.cfg", line: 8)])
        #expect(g.spreadChecks == 5)
        // expose-fd listeners is implied by gproxy's own reload hand-over: said once, not an error.
        #expect(config.warnings.map(\.line) == [8])
        let a = try #require(config.proxy(named: "a"))
        #expect(a.logGlobal)
        #expect(a.servers[0].port == 0)
        #expect(a.servers[1].host == "localhost")
        #expect(a.servers[1].weight == 0)
        #expect(a.servers[1].id == 7)
        #expect(a.servers[1].initState == .fullyDown)
        #expect(a.servers[1].disabled)
    }
}
