import CEpoll
import Glibc
import Splicer
import Testing
@testable import gproxy

/// Logs worded and levelled as HAProxy's, sent to a UDP syslog target (RFC 3164), and `option tcplog`.
@Suite(.serialized) struct LoggingTests {
    /// A UDP socket on 127.0.0.1:0 collecting datagrams.
    final class SyslogCollector: @unchecked Sendable {
        let fd: Int32
        let port: UInt16

        init() {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            self.fd = fd
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
            }
            _ = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
            }
            port = UInt16(bigEndian: addr.sin_port)
            var tv = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        /// Reads datagrams until one contains `needle` (or `ms` pass).
        func wait(for needle: String, ms: Int = 5000) -> String? {
            let deadline = Clock.nowMs() + UInt64(ms)
            var buf = [UInt8](repeating: 0, count: 4096)
            while Clock.nowMs() < deadline {
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 4096, 0) }
                if n > 0 {
                    let line = String(decoding: buf[0..<n], as: UTF8.self)
                    if line.contains(needle) { return line }
                }
            }
            return nil
        }
    }

    @Test func stateChangesAndSessionsReachSyslogWithHAProxysLevels() throws {
        let cluster = try SimulatedCluster(memberCount: 2)
        defer { cluster.stop() }
        let syslog = SyslogCollector()
        let port = RuntimeHarness.freePort()
        let (a, b) = (cluster.members[0], cluster.members[1])
        let h = try RuntimeHarness("""
            global
                log 127.0.0.1:\(syslog.port) local0
            listen rw
                bind 127.0.0.1:\(port)
                log global
                option tcplog
                option httpchk
                http-check expect status 200
                timeout connect 2s
                timeout check 2s
                server \(a.name) 127.0.0.1:\(a.dbPort) check port \(a.apiPort) inter 100 rise 1 fall 1
                server \(b.name) 127.0.0.1:\(b.dbPort) check port \(b.apiPort) inter 100 rise 1 fall 1

            """)
        defer { h.stop() }
        // local0 = 16: alert 16*8+1 = 129, notice 133, info 134, emerg 128.
        let down = try #require(syslog.wait(for: "Server rw/pg2 is DOWN"))
        #expect(down.hasPrefix("<129>"))
        #expect(down.contains("gproxy[\(getpid())]: Server rw/pg2 is DOWN, reason: Layer7 wrong status, code: 503, "
            + "info: \"Service Unavailable\", check duration: "))
        #expect(down.hasSuffix("1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."))
        #expect(RuntimeHarness.nodeBehind(port: port) == "pg1")
        let session = try #require(syslog.wait(for: " rw rw/pg1 "))
        #expect(session.hasPrefix("<134>"))
        #expect(session.range(of: #"127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] rw rw/pg1 \d+/\d+/\d+ \d+ -- \d+/\d+/\d+/\d+/0 0/0$"#,
                                 options: .regularExpression) != nil)
        cluster.setFault(node: "pg1", fault: .refuse)
        let last = try #require(syslog.wait(for: "has no server available!"))
        #expect(last.hasPrefix("<128>"))
        #expect(last.hasSuffix("proxy rw has no server available!"))
    }
}
