import CEpoll
import Foundation
import Glibc
import Testing
@testable import gproxy

/// `monitor-uri` / `monitor fail` / `acl nbsrv()`: the pure handler against the bytes HAProxy 2.6.12
/// sent for the same config (captured with curl and a raw socket), the rules, the config keywords,
/// and a whole running gproxy whose endpoint follows its routing table.
@Suite struct MonitorHTTPHandlerTests {
    // HAProxy 2.6.12's answers, byte for byte.
    static let haproxy200 = "HTTP/1.1 200 OK\r\ncontent-length: 58\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n\r\n"
        + "<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n"
    static let haproxy503 = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\ncache-control: no-cache\r\n"
        + "content-type: text/html\r\n\r\n<html><body><h1>503 Service Unavailable</h1>\n"
        + "No server is available to handle this request.\n</body></html>\n"
    static let haproxy200http10 = "HTTP/1.1 200 OK\r\ncontent-length: 58\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n"
        + "connection: close\r\n\r\n<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n"

    func answer(_ raw: String, failing: Bool = false, stopping: Bool = false) -> MonitorHTTPHandler.Answer {
        MonitorHTTPHandler.handle(Array(raw.utf8), uri: "/gproxy-health", stopping: stopping) { failing }
    }

    func text(_ a: MonitorHTTPHandler.Answer) -> String? {
        if case .response(let b) = a { return String(decoding: b, as: UTF8.self) }
        return nil
    }

    @Test func answersAsHAProxy() {
        #expect(text(answer("GET /gproxy-health HTTP/1.1\r\nHost: x\r\n\r\n")) == Self.haproxy200)
        #expect(text(answer("GET /gproxy-health HTTP/1.1\r\n\r\n", failing: true)) == Self.haproxy503)
        #expect(text(answer("GET /gproxy-health HTTP/1.0\r\n\r\n")) == Self.haproxy200http10)
        // Method ignored; absolute form reduced to its path.
        #expect(text(answer("OPTIONS /gproxy-health HTTP/1.1\r\n\r\n")) == Self.haproxy200)
        #expect(text(answer("GET http://x/gproxy-health HTTP/1.1\r\nHost: x\r\n\r\n")) == Self.haproxy200)
        let head = text(answer("HEAD /gproxy-health HTTP/1.1\r\n\r\n"))
        #expect(head.map { Array($0.utf8) } == Array(Self.haproxy200.utf8.dropLast(58)))
    }

    @Test func otherURIsAreNotTheMonitor() {
        #expect(answer("GET /gproxy-health?x=1 HTTP/1.1\r\n\r\n") == .other)
        #expect(answer("GET /gproxy-health/ HTTP/1.1\r\n\r\n") == .other)
        #expect(answer("GET /GPROXY-HEALTH HTTP/1.1\r\n\r\n") == .other)
        #expect(answer("GARBAGE\r\n\r\n") == .other)
        #expect(answer("GET /gproxy-health HTTP/1.1\r\n") == .incomplete)
    }

    @Test func stoppingAnswers503() {
        #expect(text(answer("GET /gproxy-health HTTP/1.1\r\n\r\n", stopping: true)) == Self.haproxy503)
    }
}

@Suite struct MonitorRulesTests {
    func rules(_ acls: [MonitorACL], _ conditions: [MonitorCondition]) -> MonitorRules {
        let names = ["rw", "ro"]
        return MonitorRules(MonitorConfig(uri: "/h", acls: acls, failConditions: conditions)) { names.firstIndex(of: $0) }!
    }

    func acl(_ name: String, _ b: String, _ c: MonitorACL.Comparison, _ v: Int) -> MonitorACL {
        MonitorACL(name: name, backend: b, comparison: c, value: v)
    }

    func cond(_ unless: Bool, _ alts: [[(String, Bool)]]) -> MonitorCondition {
        MonitorCondition(unless: unless, alternatives: alts.map { $0.map { .init(acl: $0.0, negated: $0.1) } })
    }

    @Test func nbsrvComparisons() {
        let r = rules([acl("down", "rw", .lt, 1)], [cond(false, [[("down", false)]])])
        #expect(r.failing { _ in 0 })
        #expect(!r.failing { _ in 1 })
        let u = rules([acl("up", "rw", .ge, 1)], [cond(true, [[("up", false)]])])
        #expect(u.failing { _ in 0 })
        #expect(!u.failing { _ in 2 })
        for (c, expected) in [(MonitorACL.Comparison.lt, [true, false, false]), (.le, [true, true, false]),
                              (.eq, [false, true, false]), (.ge, [false, true, true]), (.gt, [false, false, true])] {
            #expect((0...2).map { c.holds($0, 1) } == expected)
        }
    }

    @Test func andOrNotAndSameNameLines() {
        // Two lines named `bad` are ORed; `bad !ro_up` ANDs; `||` alternates.
        let r = rules([acl("bad", "rw", .lt, 1), acl("bad", "rw", .gt, 1), acl("ro_up", "ro", .ge, 1)],
                      [cond(false, [[("bad", false), ("ro_up", true)], [("FALSE", false)]])])
        let counts: [[Int]: Bool] = [[0, 0]: true, [2, 0]: true, [1, 0]: false, [0, 1]: false, [2, 3]: false]
        for (n, fails) in counts { #expect(r.failing { n[$0] } == fails, "nbsrv \(n)") }
        let t = rules([], [cond(false, [[("FALSE", false)], [("TRUE", false)]])])
        #expect(t.failing { _ in 1 })
    }

    @Test func unknownBackendIsNil() {
        #expect(MonitorRules(MonitorConfig(uri: "/h", acls: [acl("x", "zz", .lt, 1)])) { _ in nil } == nil)
    }
}

@Suite struct MonitorConfigTests {
    static let base = """
    defaults
        timeout client 1s
        timeout server 1s
        timeout connect 1s
    listen rw
        bind 127.0.0.1:1
        server a 127.0.0.1:2 check

    """

    func refused(_ tail: String) -> [String] {
        do {
            _ = try ConfigLoader.parse(text: Self.base + tail, file: "t.cfg")
            return ["accepted"]
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test func parsesTheRecommendedCheck() throws {
        let c = try ConfigLoader.parse(text: Self.base + """
        listen health
            mode http
            bind 127.0.0.1:3
            monitor-uri /gproxy-health
            acl writer_down nbsrv(rw) lt 1
            monitor fail if writer_down

        """, file: "t.cfg")
        let m = try #require(c.proxies.first { $0.name == "health" }).monitor
        #expect(m.uri == "/gproxy-health")
        #expect(m.acls.map(\.backend) == ["rw"] && m.acls[0].comparison == .lt && m.acls[0].value == 1)
        #expect(m.failConditions.count == 1 && !m.failConditions[0].unless)
        #expect(c.warnings.isEmpty)
    }

    @Test func refusesWhatItCannotEvaluate() {
        let head = "listen h\n    mode http\n    bind 127.0.0.1:3\n    monitor-uri /h\n"
        #expect(refused(head + "    acl x nbsrv(zz) lt 1\n")
            == ["t.cfg:12: unable to find backend 'zz' referenced in arg 1 of ACL keyword 'nbsrv' in proxy 'h'."])
        #expect(refused(head + "    monitor fail if y\n")
            == ["t.cfg:12: error detected while parsing a 'monitor fail' condition : no such ACL : 'y'."])
        #expect(refused(head + "    monitor fail y\n")
            == ["t.cfg:12: 'monitor fail' requires either 'if' or 'unless' followed by a condition."])
        #expect(refused(head + "    acl x nbsrv(rw) foo 1\n")
            == ["t.cfg:12: error detected while parsing ACL 'x' : 'foo' is not a number."])
        #expect(refused(head + "    acl x src 10.0.0.1\n").first?.contains("keyword 'acl ... src' is not implemented by gproxy") == true)
        #expect(refused(head + "    acl x nbsrv(rw) -m int lt 1\n") == ["t.cfg:12: keyword 'acl ... -m' is not implemented by gproxy."])
        #expect(refused(head + "    monitor fail if { nbsrv(rw) lt 1 }\n").first?.contains("anonymous ACL") == true)
        #expect(refused(head + "    monitor fail if LOCALHOST\n").first?.contains("not implemented by gproxy") == true)
        #expect(refused("defaults\n    acl x nbsrv(rw) lt 1\n")
            == ["t.cfg:9: 'acl' not allowed in anonymous 'defaults' section."])
        #expect(refused("defaults\n    monitor fail if TRUE\n") == ["t.cfg:9: 'monitor' not allowed in 'defaults' section."])
    }

    @Test func warnsWhereHAProxyIgnores() throws {
        let c = try ConfigLoader.parse(text: Self.base + "listen t\n    bind 127.0.0.1:3\n    monitor-uri /h\n    server b 127.0.0.1:4\n",
                                       file: "t.cfg")
        #expect(c.warnings.map(\.description) == ["t.cfg:8: monitor-uri will be ignored for proxy 't' (needs 'mode http')."])
        #expect(c.proxies.first { $0.name == "t" }?.monitor.uri == nil)
    }
}

/// A running gproxy: the endpoint answers 200 while the writer backend has its server, 503 once the
/// checker takes it out, and nothing once soft-stopped (listener closed, as HAProxy's).
@Suite(.serialized) struct MonitorLiveTests {
    @Test func followsTheRoutingTableAndSoftStop() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        let rw = RuntimeHarness.freePort(), ro = RuntimeHarness.freePort(), health = RuntimeHarness.freePort()
        let text = RuntimeHarness.seedConfig(cluster, rw: rw, ro: ro) + """

        listen health
            mode http
            bind 127.0.0.1:\(health)
            timeout client 2s
            monitor-uri /gproxy-health
            acl writer_down nbsrv(opengauss) lt 1
            monitor fail if writer_down

        """
        let harness = try RuntimeHarness(text)
        var stopped = false
        defer { if !stopped { harness.stop() } }
        func get(_ path: String) -> String {
            TestClient.get(port: health, "GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
        }
        #expect(RuntimeHarness.eventually { get("/gproxy-health") == MonitorHTTPHandlerTests.haproxy200 })
        // Not the monitor URI, no stats page: HAProxy's 503.
        #expect(get("/other") == MonitorHTTPHandlerTests.haproxy503)
        let leader = try #require(cluster.members.first { $0.name == "pg1" })
        cluster.stopMember(leader.name)
        #expect(RuntimeHarness.eventually { get("/gproxy-health") == MonitorHTTPHandlerTests.haproxy503 })
        harness.runtime.softStop()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_storage()
        let len = cepoll_make_addr("127.0.0.1", Int32(health), &addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(len)) }
        }
        #expect(rc != 0 && errno == ECONNREFUSED)
        harness.stop()
        stopped = true
    }
}

/// The listener's dispatch (`StatsServer.answer`): monitor URI first, then the stats page, else
/// HAProxy's 503 — which, like HAProxy's, has no body for HEAD and says `connection: close` to an
/// HTTP/1.0 client (found comparing the gproxy binary with haproxy 2.6 on the same config).
@Suite struct MonitorListenerDispatchTests {
    func server(stats: Bool) throws -> StatsServer {
        var config = StatsConfig()
        config.enabled = stats
        config.uri = "/stats"
        let s = StatsServer(bind: [], config: config, clientTimeoutMs: nil, control: try ControlLoop()) { StatsFixtures.snapshot }
        s.monitor = MonitorEndpoint(uri: "/health", rules: MonitorRules(MonitorConfig(uri: "/health")) { _ in nil }!) { _ in 0 }
        return s
    }

    func text(_ s: StatsServer, _ raw: String) -> String {
        String(decoding: s.answer(Array(raw.utf8)) ?? [], as: UTF8.self)
    }

    @Test func otherURIsWithoutStatsGetHAProxys503() throws {
        let s = try server(stats: false)
        #expect(text(s, "GET /health HTTP/1.1\r\n\r\n") == MonitorHTTPHandlerTests.haproxy200)
        #expect(text(s, "GET /other HTTP/1.1\r\n\r\n") == MonitorHTTPHandlerTests.haproxy503)
        #expect(text(s, "HEAD /other HTTP/1.1\r\n\r\n") == String(MonitorHTTPHandlerTests.haproxy503.split(separator: "<html>")[0]))
        #expect(text(s, "GET /other HTTP/1.0\r\n\r\n")
            == MonitorHTTPHandlerTests.haproxy503.replacingOccurrences(of: "\r\n\r\n", with: "\r\nconnection: close\r\n\r\n"))
        #expect(text(s, "GET /stats HTTP/1.1\r\n\r\n") == MonitorHTTPHandlerTests.haproxy503)
    }

    @Test func otherURIsWithStatsGetThePage() throws {
        let s = try server(stats: true)
        #expect(text(s, "GET /health HTTP/1.1\r\n\r\n") == MonitorHTTPHandlerTests.haproxy200)
        #expect(text(s, "GET /stats;csv HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 200 OK"))
    }
}
