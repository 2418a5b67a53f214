import CEpoll
import Glibc
import Testing
@testable import gproxy

@Suite struct StatsHTTPHandlerTests {
    let snap = StatsFixtures.snapshot
    var config: StatsConfig {
        var c = StatsConfig()
        c.enabled = true
        c.uri = "/"
        return c
    }

    func respond(_ raw: String, _ config: StatsConfig? = nil) -> (status: Int, head: String, body: String) {
        let snap = snap
        let bytes = StatsHTTPHandler.handle(Array(raw.utf8), config: config ?? self.config) { snap }
        let text = String(decoding: bytes ?? [], as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let status = Int(text.split(separator: " ")[1]) ?? 0
        return (status, parts[0], parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test func servesEveryFormat() {
        let html = respond("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(html.status == 200 && html.head.contains("content-type: text/html") && html.body.contains("<html>"))
        #expect(html.head.contains("cache-control: no-cache") && html.head.contains("connection: close"))
        #expect(html.head.contains("content-length: \(html.body.utf8.count)"))
        let csv = respond("GET /;csv HTTP/1.1\r\n\r\n")
        #expect(csv.status == 200 && csv.head.contains("content-type: text/plain") && csv.body == StatsCSV.render(snap))
        let csv2 = respond("GET /anything/here;csv;norefresh HTTP/1.0\r\n\r\n")
        #expect(csv2.status == 200 && csv2.body.hasPrefix("# pxname"))
        let json = respond("GET /;json HTTP/1.1\r\n\r\n")
        #expect(json.status == 200 && json.head.contains("application/json") && json.body.hasPrefix("[["))
        let metrics = respond("GET /metrics HTTP/1.1\r\n\r\n")
        #expect(metrics.status == 200 && metrics.head.contains("version=0.0.4") && metrics.body.contains("haproxy_server_status{"))
        let head = respond("HEAD /;csv HTTP/1.1\r\n\r\n")
        #expect(head.status == 200 && head.body.isEmpty && head.head.contains("content-length: \(StatsCSV.render(snap).utf8.count)"))
    }

    /// A reply to HEAD has no body, errors included (RFC 9110 §9.3.2): a client that reads only the
    /// head would take the body for the start of the next response.
    @Test func headErrorsCarryNoBody() {
        var c = config
        c.uri = "/stats"
        let missing = respond("HEAD /elsewhere HTTP/1.1\r\n\r\n", c)
        #expect(missing.status == 503 && missing.body.isEmpty)
        #expect(missing.head.contains("content-length: ") && !missing.head.contains("content-length: 0\r"))
        c.auth = [StatsCredential(user: "u", password: "p")]
        let denied = respond("HEAD /stats HTTP/1.1\r\n\r\n", c)
        #expect(denied.status == 401 && denied.body.isEmpty && denied.head.contains("www-authenticate: "))
        // The same errors to GET keep their body.
        #expect(respond("GET /stats HTTP/1.1\r\n\r\n", c).body.contains("401"))
    }

    @Test func uriIsAPrefix() {
        var c = config
        c.uri = "/haproxy?stats"
        #expect(respond("GET /haproxy?stats HTTP/1.1\r\n\r\n", c).status == 200)
        #expect(respond("GET /haproxy?stats;csv HTTP/1.1\r\n\r\n", c).body.hasPrefix("# pxname"))
        #expect(respond("GET /other HTTP/1.1\r\n\r\n", c).status == 503)
        #expect(respond("GET /metrics HTTP/1.1\r\n\r\n", c).status == 200)
    }

    @Test func refreshHeaderAndFilters() {
        var c = config
        c.refresh = 5000
        let r = respond("GET / HTTP/1.1\r\n\r\n", c)
        #expect(r.head.contains("refresh: 5") && r.body.contains("http-equiv=\"refresh\" content=\"5\""))
        let n = respond("GET /;norefresh HTTP/1.1\r\n\r\n", c)
        #expect(!n.head.contains("refresh:") && !n.body.contains("http-equiv"))
        let up = respond("GET /;csv;up HTTP/1.1\r\n\r\n", c)
        #expect(!up.body.contains("opengauss,pg2,") && up.body.contains("opengauss,pg1,"))
    }

    @Test func basicAuth() {
        var c = config
        c.auth = [StatsCredential(user: "admin", password: "s3cret:x")]
        c.realm = "HAProxy Statistics"
        let none = respond("GET / HTTP/1.1\r\n\r\n", c)
        #expect(none.status == 401 && none.head.contains("www-authenticate: Basic realm=\"HAProxy Statistics\""))
        // "admin:wrong"
        #expect(respond("GET / HTTP/1.1\r\nAuthorization: Basic YWRtaW46d3Jvbmc=\r\n\r\n", c).status == 401)
        #expect(respond("GET / HTTP/1.1\r\nAuthorization: Basic !!!\r\n\r\n", c).status == 401)
        // "admin:s3cret:x"
        #expect(respond("GET / HTTP/1.1\r\nauthorization: basic YWRtaW46czNjcmV0Ong=\r\n\r\n", c).status == 200)
        #expect(respond("GET /metrics HTTP/1.1\r\n\r\n", c).status == 401)
    }

    @Test func rejectsBadRequests() {
        #expect(respond("GARBAGE\r\n\r\n").status == 400)
        #expect(respond("GET / HTTP/2.0\r\n\r\n").status == 400)
        #expect(respond("GET  / HTTP/1.1\r\n\r\n").status == 400)
        #expect(respond("GET / HTTP/1.1\r\nNoColon\r\n\r\n").status == 400)
        #expect(respond("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n").status == 400)
        let post = respond("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        #expect(post.status == 405 && post.head.contains("allow: GET, HEAD"))
        let longURI = "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\n\r\n"
        #expect(respond(longURI).status == 414)
        #expect(respond("GET /" + String(repeating: "a", count: 9000)).status == 414)
        let bigHeaders = "GET / HTTP/1.1\r\n" + (0..<400).map { "X-H\($0): \(String(repeating: "v", count: 40))\r\n" }.joined() + "\r\n"
        #expect(respond(bigHeaders).status == 431)
        #expect(StatsHTTPHandler.handle(Array("GET / HTTP/1.1\r\nHost: x\r\n".utf8), config: config) { snap } == nil)
    }

    @Test func base64() {
        #expect(Base64.decode("YWRtaW46czNjcmV0") == Array("admin:s3cret".utf8))
        #expect(Base64.decode("YQ==") == Array("a".utf8))
        // Unpadded or with stray bits: refused, as HAProxy's decoder refuses them.
        #expect(Base64.decode("YQ") == nil)
        #expect(Base64.decode("YR==") == nil)
        #expect(Base64.decode("YWI=") == Array("ab".utf8))
        #expect(Base64.decode("Y*") == nil)
    }
}

@Suite(.serialized) struct StatsServerTests {
    static let snap = StatsFixtures.snapshot

    /// A stats server on its own control loop; `stop()` stops both.
    final class Running {
        let control: ControlLoop
        let server: StatsServer
        init(timeoutMs: Int?, port: UInt16 = 0, config: StatsConfig? = nil) throws {
            var c = StatsConfig()
            c.enabled = true
            c.uri = "/"
            let snap = StatsServerTests.snap
            control = try ControlLoop()
            server = StatsServer(bind: [(host: "127.0.0.1", port: port)], config: config ?? c, clientTimeoutMs: timeoutMs,
                                 control: control) { snap }
            try server.start()
            control.start()
        }
        var boundPorts: [UInt16] { server.boundPorts }
        func stop() {
            server.stop()
            control.stop()
        }
    }

    func makeServer(timeoutMs: Int? = nil) throws -> Running { try Running(timeoutMs: timeoutMs) }

    @Test func servesOverLoopback() throws {
        let s = try makeServer()
        defer { s.stop() }
        let port = try #require(s.boundPorts.first)
        #expect(port != 0)
        let r = TestClient.get(port: port, "GET /;csv HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(r.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(r.hasSuffix(StatsCSV.render(Self.snap)))
        let m = TestClient.get(port: port, "GET /metrics HTTP/1.0\r\n\r\n")
        #expect(m.contains("haproxy_frontend_current_sessions{proxy=\"opengauss\"} 1"))
        let bad = TestClient.get(port: port, "BAD\r\n\r\n")
        #expect(bad.hasPrefix("HTTP/1.1 400"))
    }

    @Test func cutsSlowClients() throws {
        let s = try makeServer(timeoutMs: 200)
        defer { s.stop() }
        let port = try #require(s.boundPorts.first)
        let fd = TestClient.connect(port: port)
        defer { close(fd) }
        TestClient.send(fd, "GET / HTTP/1.1\r\n")
        let t0 = cepoll_monotonic_ms()
        let r = TestClient.readAll(fd)
        let elapsed = cepoll_monotonic_ms() - t0
        #expect(r.hasPrefix("HTTP/1.1 408"))
        #expect(elapsed < 2000)
    }

    @Test func answers500ConcurrentClients() throws {
        _ = cepoll_raise_nofile()
        let s = try makeServer()
        defer { s.stop() }
        let port = try #require(s.boundPorts.first)
        let fds = (0..<500).map { _ in TestClient.connect(port: port) }
        for fd in fds { TestClient.send(fd, "GET /;csv HTTP/1.1\r\n\r\n") }
        var ok = 0
        for fd in fds {
            if TestClient.readAll(fd).hasPrefix("HTTP/1.1 200 OK") { ok += 1 }
            close(fd)
        }
        #expect(ok == 500)
    }

    @Test func stopIsIdempotentAndFreesPort() throws {
        let s = try makeServer()
        let port = try #require(s.boundPorts.first)
        s.stop()
        s.stop()
        let again = try Running(timeoutMs: nil, port: port, config: StatsConfig())
        again.stop()
    }
}

/// Requests HAProxy refuses and gproxy once accepted (issue: stats HTTP leniencies).
@Suite struct StatsHTTPStrictnessTests {
    func status(_ raw: String, auth: Bool = false, admin: Bool = false) -> Int? {
        var c = StatsConfig()
        c.enabled = true
        c.uri = "/"
        c.admin = admin
        if auth { c.auth = [StatsCredential(user: "user", password: "pass")] }
        let snap = StatsFixtures.snapshot
        guard let bytes = StatsHTTPHandler.handle(Array(raw.utf8), config: c, admin: FakeAdmin(), snapshot: { snap }) else {
            return nil
        }
        return Int(String(decoding: bytes.prefix(12), as: UTF8.self).split(separator: " ")[1])
    }

    /// Two different lengths: which one a front proxy used is unknowable (request smuggling).
    @Test func conflictingContentLengthsAre400() {
        let body = "s=pg1&action=maint&b=%23a"
        #expect(status("POST / HTTP/1.1\r\nContent-Length: \(body.count)\r\nContent-Length: 3\r\n\r\n\(body)", admin: true) == 400)
        #expect(status("POST / HTTP/1.1\r\nContent-Length: \(body.count), 3\r\n\r\n\(body)", admin: true) == 400)
        #expect(status("GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n") == 400)
        // The same value twice is allowed, as RFC 9112 §6.3 lets a recipient do.
        #expect(status("POST / HTTP/1.1\r\nContent-Length: \(body.count)\r\nContent-Length: \(body.count)\r\n\r\n\(body)", admin: true) == 303)
    }

    @Test func basicCredentialsWithTrailingJunkAreRefused() {
        let good = "dXNlcjpwYXNz"  // user:pass
        #expect(status("GET / HTTP/1.1\r\nAuthorization: Basic \(good)\r\n\r\n", auth: true) == 200)
        #expect(status("GET / HTTP/1.1\r\nAuthorization: Basic \(good) junk\r\n\r\n", auth: true) == 401)
        #expect(status("GET / HTTP/1.1\r\nAuthorization: Basic \(good)!!\r\n\r\n", auth: true) == 401)
        // Characters past the credentials' last quantum: decoders that drop leftover bits accept them.
        #expect(status("GET / HTTP/1.1\r\nAuthorization: Basic \(good)X\r\n\r\n", auth: true) == 401)
        #expect(status("GET / HTTP/1.1\r\nAuthorization: Basic \(good)=\r\n\r\n", auth: true) == 401)
        #expect(status("GET / HTTP/1.1\r\nAuthorization: Basic \(good)YQ\r\n\r\n", auth: true) == 401)
    }

    /// A head that ends in bare CRs will never be complete: answer now, do not wait for the timeout.
    @Test func bareCarriageReturnsAre400() {
        #expect(status("GET / HTTP/1.1\r\r\r\r") == 400)
        #expect(status("GET / HTTP/1.1\rHost: x\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\r\nHost: x\r\r\n\r\n") == 400)
    }
}
