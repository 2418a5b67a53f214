/// The `monitor-uri` endpoint as a pure function: request bytes, "does a `monitor fail` condition
/// hold" and "is the process stopping" in; HAProxy 2.6's exact answer bytes out. The stats server
/// only moves bytes.
///
/// As HAProxy: the URI must equal `monitor-uri` (path and query; an absolute-form request is
/// reduced to its path first); method, headers and body are ignored; the answer is HAProxy's
/// built-in 200 "Service ready." or 503 page, with `connection: close` for an HTTP/1.0 request, and
/// the connection is closed after it. A request for any other URI goes to the stats page when the
/// proxy has one (`otherURIs: .stats`), otherwise it gets the same 503 (HAProxy: no backend), HEAD and
/// HTTP/1.0 included.
///
/// gproxy addition: a stopping process (SIGUSR1) answers 503 to every monitor request it still
/// reads. Its listeners close at soft stop, as HAProxy's, so new probes are refused or reach the
/// process that replaced it; only a probe accepted before the stop sees this 503.
enum MonitorHTTPHandler {
    enum Answer: Equatable {
        /// More bytes are needed.
        case incomplete
        /// Not the monitor URI (or not HTTP): the stats page answers.
        case other
        case response([UInt8])
    }

    /// Who answers a request for another URI.
    enum OtherURIs { case stats, unavailable }

    static func handle(_ bytes: [UInt8], uri: String, otherURIs: OtherURIs = .stats, stopping: Bool,
                       failing: () -> Bool) -> Answer {
        switch StatsHTTPHandler.parse(bytes) {
        case .incomplete: return .incomplete
        case .failure: return .other  // the stats handler words the 400/414/431
        case .request(let req):
            let head = req.method == "HEAD", http10 = req.version == "HTTP/1.0"
            guard req.uri == uri else {
                return otherURIs == .stats ? .other : .response(answer(503, head: head, http10: http10))
            }
            let ok = !stopping && !failing()
            return .response(answer(ok ? 200 : 503, head: head, http10: http10))
        }
    }

    static let readyBody = "<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n"
    static let unavailableBody = "<html><body><h1>503 Service Unavailable</h1>\n"
        + "No server is available to handle this request.\n</body></html>\n"

    /// HAProxy's `http_err_msg` 200 / 503 (header names and order as it sends them).
    static func answer(_ status: Int, head: Bool, http10: Bool) -> [UInt8] {
        let body = status == 200 ? readyBody : unavailableBody
        let reason = status == 200 ? "OK" : "Service Unavailable"
        var h = "HTTP/1.1 \(status) \(reason)\r\ncontent-length: \(body.utf8.count)\r\n"
            + "cache-control: no-cache\r\ncontent-type: text/html\r\n"
        if http10 { h += "connection: close\r\n" }
        h += "\r\n"
        return Array(h.utf8) + (head ? [] : Array(body.utf8))
    }
}
