// One member's simulated Patroni REST API: HTTP/1.0, one request per connection, answered from the
// shared cluster model and then closed — byte for byte like Patroni's `BaseHTTPRequestHandler`.
//
// Reply shapes (shared/reference/patroni-api.md §1):
//   OPTIONS/HEAD, any path      "HTTP/1.0 200 OK\r\n\r\n" | "HTTP/1.0 503 Service Unavailable\r\n\r\n"
//   GET health path, /patroni   status line, Server, Date, Content-Type: application/json, blank, JSON
//   GET /cluster, /history      the same headers, always 200
//   GET /liveness, /readiness   status line + blank line only
//   POST /switchover, /failover text/html body, e.g. `Successfully switched over to "pg2"`
// No reply carries Content-Length; the close marks the end. The injected fault (see
// `SimulatedAPIFault`) is read per connection, so a test can change it between two checks.

import Foundation
import Splicer

/// The REST API of one simulated member.
final class SimulatedPatroniAPI: @unchecked Sendable {
    let name: String
    private let model: SimulatedClusterModel
    private let lock = PThreadLock()
    private var requests = 0
    private var lastRequest: [UInt8] = []
    private var arrivals: [UInt64] = []
    private var server: DemoTCPServer!

    /// The `Server:` header of GET replies (Patroni's default `server_tokens: original`).
    static let serverHeader = "BaseHTTP/0.6 Python/3.11.2"

    init(name: String, model: SimulatedClusterModel) {
        self.name = name
        self.model = model
        // A strong capture: the API lives until stop(), whoever else drops it (stop() breaks the cycle).
        server = DemoTCPServer(label: "api-\(name)") { [self] conn in handle(conn) }
    }

    /// Starts listening (0 = any free port, or the port of an earlier start); returns the port.
    @discardableResult
    func start(port: UInt16 = 0) throws -> UInt16 { try server.start(port: port) }

    /// Closes the listener only (connects are refused); used by the `.refuse` fault and failover.
    func stopListening() { server.stopListening() }

    /// Closes everything and waits for the connection threads. Final: it cannot be started again.
    func stop() { server.stop() }

    var port: UInt16 { server.port }
    var isListening: Bool { server.isListening }

    /// Complete request heads received since start or the last `resetCounters()`, whatever the fault.
    var requestCount: Int { lock.withLock { requests } }

    /// The exact bytes of the last request (head and any body), e.g. `OPTIONS / HTTP/1.0\r\n\r\n`.
    var lastRequestBytes: [UInt8] { lock.withLock { lastRequest } }

    var lastRequestText: String { String(decoding: lastRequestBytes, as: UTF8.self) }

    /// CLOCK_MONOTONIC milliseconds at which the last (up to 1,000) requests arrived, oldest first,
    /// so tests can measure check intervals (`inter`, `fastinter`, `downinter`).
    var requestTimesMs: [UInt64] { lock.withLock { arrivals } }

    func resetCounters() { lock.withLock { requests = 0; lastRequest = []; arrivals = [] } }

    // MARK: - Connection handling

    private func handle(_ conn: DemoConnection) {
        guard let (raw, head, bodyStart) = readHead(conn) else { return }
        var bytes = raw
        var request = PatroniRequest.parse(head: head)
        if let length = request?.contentLength, length > 0 {
            // Only a POST body matters here; read exactly the declared length (what curl -d sends).
            while bytes.count - bodyStart < length, let more = conn.read(), !more.isEmpty { bytes += more }
            request?.body = Array(bytes[bodyStart...].prefix(length))
        }
        lock.withLock {
            requests += 1
            lastRequest = bytes
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            if arrivals.count == 1000 { arrivals.removeFirst() }
            arrivals.append(UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000)
        }
        let fault = model.member(name)?.fault ?? .refuse
        switch fault {
        case .normal:
            conn.write(respond(to: request))
        case .refuse, .resetAfterRequest:
            conn.requestReset()
        case .hang:
            // Keep reading until the client gives up (or the simulator stops).
            while let more = conn.read(), !more.isEmpty {}
        case .garbage:
            conn.write("GARBAGE\r\n\r\n")
        case .closeWithoutResponse:
            break
        case .slow(let ms):
            guard demoSleep(ms: ms, cancelled: { server.isStopping || conn.isAborted }) else { return }
            conn.write(respond(to: request))
        case .forceStatus(let code):
            conn.write(forced(code, request: request))
        }
    }

    /// Reads until the blank line ending the head, EOF, or 64 KiB.
    /// Returns every byte read, the head text (without the blank line) and where the body starts.
    private func readHead(_ conn: DemoConnection) -> ([UInt8], String, Int)? {
        var buf: [UInt8] = []
        while buf.count < 64 * 1024 {
            guard let chunk = conn.read(), !chunk.isEmpty else { break }
            buf += chunk
            if let (end, bodyStart) = Self.headEnd(buf) {
                return (buf, String(decoding: buf[..<end], as: UTF8.self), bodyStart)
            }
        }
        // EOF or overflow before a full head: still count it and answer what can be parsed.
        guard !buf.isEmpty else { return nil }
        return (buf, String(decoding: buf, as: UTF8.self), buf.count)
    }

    /// Where the head ends and the body starts, once `\r\n\r\n` (or bare `\n\n`) has arrived.
    private static func headEnd(_ b: [UInt8]) -> (Int, Int)? {
        var i = 0
        while i + 1 < b.count {
            if b[i] == 0x0A && b[i + 1] == 0x0A { return (i, i + 2) }
            if i + 3 < b.count, b[i] == 0x0D, b[i + 1] == 0x0A, b[i + 2] == 0x0D, b[i + 3] == 0x0A { return (i, i + 4) }
            i += 1
        }
        return nil
    }

    // MARK: - Responses

    /// Builds the reply Patroni gives to `request` right now.
    func respond(to request: PatroniRequest?) -> String {
        guard let request else { return Self.plain(400, body: "Bad request syntax") }
        guard let view = model.view(for: name) else { return Self.statusOnly(503) }
        let segment = request.path.split(separator: "/").first.map(String.init) ?? ""
        switch (request.method, segment) {
        case ("GET", "patroni"):
            return Self.jsonReply(200, PatroniHealthRules.statusDocument(view))
        case ("GET", "cluster"):
            return Self.jsonReply(200, PatroniHealthRules.clusterDocument(view))
        case ("GET", "history"):
            let rows: [[Any]] = model.history.map { [$0.0, $0.1, $0.2, $0.3, $0.4] }
            return Self.jsonReply(200, rows)
        case ("GET", "liveness"):
            return Self.statusOnly(200)
        case ("GET", "readiness"):
            return Self.statusOnly(view.isLeader || (view.member.state == .running) ? 200 : 503)
        case ("POST", "switchover"), ("POST", "failover"):
            return switchover(request, failover: segment == "failover")
        case ("GET", _):
            let code = PatroniHealthRules.status(path: request.path, request: request, view: view)
            return Self.jsonReply(code, PatroniHealthRules.statusDocument(view))
        case ("OPTIONS", _), ("HEAD", _):
            return Self.statusOnly(PatroniHealthRules.status(path: request.path, request: request, view: view))
        default:
            return Self.plain(501, body: "Unsupported method ('\(request.method)')")
        }
    }

    /// `POST /switchover` / `/failover` with `{"leader": ..., "candidate": ...}`.
    /// Unlike Patroni 4, a switchover without `leader` is accepted, so `-d '{"candidate":"pg2"}'` works.
    private func switchover(_ request: PatroniRequest, failover: Bool) -> String {
        let object = try? JSONSerialization.jsonObject(with: Data(request.body))
        let fields = object as? [String: Any] ?? [:]
        let leader = fields["leader"] as? String
        let candidate = fields["candidate"] as? String
        if failover && candidate == nil {
            return Self.plain(400, body: "Failover could be performed only to a specific candidate")
        }
        switch model.switchover(expectedLeader: leader, candidate: candidate) {
        case .success(let newLeader):
            let verb = failover ? "failed over" : "switched over"
            return Self.plain(200, body: "Successfully \(verb) to \"\(newLeader)\"")
        case .failure(let error):
            return Self.plain(error.status, body: error.message)
        }
    }

    /// The reply for `.forceStatus(code)`: status-only for OPTIONS/HEAD, JSON for GET.
    private func forced(_ code: Int, request: PatroniRequest?) -> String {
        guard let request, request.method == "GET", let view = model.view(for: name) else {
            return Self.statusOnly(code)
        }
        return Self.jsonReply(code, PatroniHealthRules.statusDocument(view))
    }

    static func reason(_ code: Int) -> String {
        switch code {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 412: "Precondition Failed"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        default: "Unknown"
        }
    }

    /// `HTTP/1.0 <code> <reason>\r\n\r\n`: what OPTIONS and HEAD get.
    static func statusOnly(_ code: Int) -> String { "HTTP/1.0 \(code) \(reason(code))\r\n\r\n" }

    private static func headers(_ code: Int, contentType: String) -> String {
        "HTTP/1.0 \(code) \(reason(code))\r\nServer: \(serverHeader)\r\n"
            + "Date: \(demoFormatTime("%a, %d %b %Y %H:%M:%S GMT"))\r\nContent-Type: \(contentType)\r\n\r\n"
    }

    static func jsonReply(_ code: Int, _ document: Any) -> String {
        headers(code, contentType: "application/json") + PatroniHealthRules.json(document)
    }

    static func plain(_ code: Int, body: String) -> String { headers(code, contentType: "text/html") + body }
}
