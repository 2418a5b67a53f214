import CEpoll
import Glibc
import Testing
@testable import gproxy

/// Hand-made snapshots shaped like the seed config: `opengauss` (writes, pg1 is the primary: UP,
/// the replicas DOWN with L7STS/503), `opengauss_balance` (reads, the reverse) and `stats`.
enum StatsFixtures {
    static func server(_ id: Int, up: Bool, port: Int) -> ServerStats {
        var s = ServerStats(
            name: "pg\(id)", id: id, address: "10.0.0.\(id):\(port)", status: up ? "UP" : "DOWN",
            lastChangeSeconds: up ? 7380 : 5, downtimeSeconds: up ? 0 : 5, weight: 1, userWeight: 1,
            backup: false, checked: true, checkStatus: up ? .l7ok : .l7status, checkCode: up ? 200 : 503,
            checkDurationMs: up ? 1 : 2, lastCheckInfo: up ? "OK" : "Service Unavailable",
            checkRise: 2, checkFall: 3, checkHealth: up ? 4 : 0, checkFailures: up ? 0 : 1,
            downTransitions: up ? 0 : 1)
        s.counters = RowCounters(qcur: 0, qmax: 0, scur: up ? 1 : 0, smax: up ? 3 : 0, slim: 100, stot: up ? 12 : 0,
                                 bin: up ? 1000 : 0, bout: up ? 2000 : 0, econ: 0, eresp: 0, wretr: 0, wredis: 0,
                                 cliAbrt: 0, srvAbrt: 0, lbtot: up ? 12 : 0, lastsess: up ? 3 : -1)
        s.checkPort = port + 3000
        s.initialWeight = 1
        return s
    }

    static func proxy(_ name: String, id: Int, port: Int, primaryUp: Bool) -> ProxyStats {
        let servers = (1...4).map { server($0, up: ($0 == 1) == primaryUp, port: port) }
        let usable = servers.filter { $0.status == "UP" }.count
        return ProxyStats(
            name: name, id: id, mode: "tcp",
            frontend: FrontendStats(status: "OPEN", counters: RowCounters(scur: 1, smax: 3, slim: 9981, stot: 12, bin: 1000, bout: 2000)),
            servers: servers,
            backend: BackendStats(status: "UP", counters: RowCounters(qcur: 0, qmax: 0, scur: 1, smax: 3, slim: 999, stot: 12,
                                                                      bin: 1000, bout: 2000, lbtot: 12, lastsess: 3),
                                  weight: usable, activeServers: usable, backupServers: 0, downTransitions: 0,
                                  lastChangeSeconds: 7380, downtimeSeconds: 0, algorithm: "roundrobin"))
    }

    static let snapshot: StatsSnapshot = {
        var stats = ProxyStats(name: "stats", id: 4, mode: "http",
                               frontend: FrontendStats(status: "OPEN"),
                               backend: BackendStats(status: "UP", weight: 0, activeServers: 0, backupServers: 0,
                                                     downTransitions: 0, lastChangeSeconds: 7380, downtimeSeconds: 0,
                                                     algorithm: "roundrobin"))
        stats.frontend?.counters.slim = 9981
        return StatsSnapshot(pid: 4242, version: "gproxy 0.1", nodeName: "db-proxy", uptimeSeconds: 7400, proxies: [
            proxy("opengauss", id: 2, port: 5432, primaryUp: true),
            proxy("opengauss_balance", id: 3, port: 5432, primaryUp: false),
            stats,
        ])
    }()
}

/// A tiny blocking HTTP client for loopback tests.
enum TestClient {
    static func connect(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_storage()
        let len = cepoll_make_addr("127.0.0.1", Int32(port), &addr)
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(len)) }
        }
        // A failed connect fails the test that asked, not the whole run (reads on -1 return nothing).
        if rc != 0 {
            Issue.record("connect to 127.0.0.1:\(port) failed: errno \(errno)")
            close(fd)
            return -1
        }
        return fd
    }

    static func send(_ fd: Int32, _ text: String) {
        let b = Array(text.utf8)
        var off = 0
        while off < b.count {
            let w = b.withUnsafeBytes { cepoll_write(fd, $0.baseAddress! + off, UInt(b.count - off)) }
            if w <= 0 { return }
            off += w
        }
    }

    /// Reads until EOF (or the 5 s receive timeout).
    static func readAll(_ fd: Int32) -> String {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func get(port: UInt16, _ request: String) -> String {
        let fd = connect(port: port)
        defer { close(fd) }
        send(fd, request)
        return readAll(fd)
    }
}
