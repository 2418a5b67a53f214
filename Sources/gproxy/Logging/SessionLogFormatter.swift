import Glibc
import Splicer

/// Formats a finished session as HAProxy's `option tcplog` line:
/// `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`.
struct SessionLogFormatter: Sendable {
    private let frontendNames: [String]
    private let backendNames: [String]
    private let serverNames: [[String]]
    /// Names of servers discovered at run time (their configured name is empty).
    private let liveName: @Sendable (_ backend: Int, _ server: Int) -> String

    init(config: GProxyConfig, plan: EngineBuilder.Plan,
         liveName: @escaping @Sendable (Int, Int) -> String = { _, _ in "?" }) {
        self.liveName = liveName
        frontendNames = plan.frontendProxies.map { config.proxies[$0].name }
        backendNames = plan.backendProxies.map { config.proxies[$0].name }
        serverNames = plan.spec.backends.map { $0.servers.map(\.name) }
    }

    func format(_ r: SessionRecord) -> String {
        let (ip, port) = r.client.ipAndPort
        var server = r.server >= 0 ? serverNames[r.backend][r.server] : "<NOSRV>"
        if server.isEmpty { server = liveName(r.backend, r.server) }
        let retries = r.redispatched ? "+\(r.retries)" : "\(r.retries)"
        return "\(ip):\(port) [\(SessionLogFormatter.date(r.acceptWallMs))] \(frontendNames[r.frontend]) "
            + "\(backendNames[r.backend])/\(server) \(r.queueMs)/\(r.connectMs)/\(r.totalMs) \(r.bytesToClient) "
            + "\(r.termination) \(r.processSessions)/\(r.frontendSessions)/\(r.backendSessions)/\(r.serverSessions)/"
            + "\(retries) \(r.serverQueue)/\(r.backendQueue)"
    }

    /// `24/Nov/2026:18:43:50.143`
    static func date(_ ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var tmv = tm()
        localtime_r(&t, &tmv)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let milli = Int(ms % 1000)
        let m = milli < 10 ? "00\(milli)" : milli < 100 ? "0\(milli)" : "\(milli)"
        return "\(LogSink.two(tmv.tm_mday))/\(months[Int(tmv.tm_mon)])/\(tmv.tm_year + 1900):"
            + "\(LogSink.two(tmv.tm_hour)):\(LogSink.two(tmv.tm_min)):\(LogSink.two(tmv.tm_sec)).\(m)"
    }
}
