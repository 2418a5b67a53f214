import CEpoll
import Foundation
import Glibc
import Splicer
import Testing
@testable import gproxy

/// The stats listener of a running gproxy, at the socket level: complete answers, file-descriptor
/// exhaustion, soft stop.
@Suite(.serialized) struct StatsListenerTests {
    static func config(stats: UInt16, rw: UInt16, backendPort: UInt16, servers: Int = 1, global: String = "") -> String {
        var t = """
            global
                nbthread 1
            \(global)
            listen stats
                mode http
                bind 127.0.0.1:\(stats)
                stats enable
                stats uri /
            listen rw
                bind 127.0.0.1:\(rw)

            """
        for i in 1...servers { t += "    server pg\(i) 127.0.0.1:\(backendPort)\n" }
        return t
    }

    /// `pid = N` from the HTML page, nil when nothing answered.
    static func pagePid(_ port: UInt16) -> Int32? {
        guard let page = try? simulatedHTTP(port, "GET / HTTP/1.0\r\n\r\n").0 else { return nil }
        guard let r = page.range(of: "pid = ") else { return nil }
        return Int32(page[r.upperBound...].prefix { $0.isNumber })
    }

    /// Finding: a client whose request bytes arrive after the answer started got its page cut by a
    /// reset (closing a socket with unread input sends RST, which discards what the client has not
    /// read yet). The answer must arrive whole.
    @Test func lateRequestBytesDoNotCutTheAnswer() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let stats = RuntimeHarness.freePort()
        let g = try GProxyProcess(config: Self.config(stats: stats, rw: RuntimeHarness.freePort(),
                                                      backendPort: cluster.members[0].dbPort, servers: 60))
        defer { g.stop(); unlink(g.configPath) }
        #expect(RuntimeHarness.eventually { Self.pagePid(stats) == g.pid })
        for _ in 0..<3 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var small: Int32 = 4096
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            var addr = sockaddr_storage()
            let len = cepoll_make_addr("127.0.0.1", Int32(stats), &addr)
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(len)) }
            }
            #expect(rc == 0)
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            TestClient.send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            usleep(100_000)
            // Bytes the server never reads (a late body, a pipelined request).
            TestClient.send(fd, String(repeating: "x", count: 500))
            usleep(100_000)
            let answer = TestClient.readAll(fd)
            close(fd)
            let parts = answer.components(separatedBy: "\r\n\r\n")
            let length = parts.first?.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
            let body = parts.dropFirst().joined(separator: "\r\n\r\n")
            #expect(length != nil && body.utf8.count == length, "got \(body.utf8.count) of \(length ?? -1) body bytes")
        }
    }

    /// Finding: a stats request that arrived while file descriptors were exhausted was never served
    /// until another connection arrived (the edge-triggered listener did not retry after EMFILE).
    @Test func aRequestQueuedDuringFdExhaustionIsServedOnceFdsFree() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let stats = RuntimeHarness.freePort(), rw = RuntimeHarness.freePort()
        // No explicit maxconn: one the limit cannot hold is refused at start-up (as HAProxy does);
        // the automatic one lets accept run into EMFILE, which is what this test needs.
        let g = try GProxyProcess(config: Self.config(stats: stats, rw: rw, backendPort: cluster.members[0].dbPort),
                                  shellPrefix: "ulimit -n 48;")
        defer { g.stop(); unlink(g.configPath) }
        #expect(RuntimeHarness.eventually { Self.pagePid(stats) == g.pid })
        // Sessions until the process runs out of descriptors (the last one waits in the backlog).
        var clients: [SimulatedTestClient] = []
        for _ in 0..<60 {
            guard let c = try? SimulatedTestClient(port: rw) else { break }
            clients.append(c)
            if c.readLine(timeoutMs: 500) == nil { break }
        }
        #expect(clients.count < 60, "the descriptor limit was reached")
        let fd = TestClient.connect(port: stats)
        defer { close(fd) }
        TestClient.send(fd, "GET /;csv HTTP/1.0\r\n\r\n")
        usleep(300_000)
        clients.removeAll()
        // No new connection to the stats port: the waiting one must be picked up by itself.
        let answer = TestClient.readAll(fd)
        #expect(answer.hasPrefix("HTTP/1.1 200"), "answer: \(answer.prefix(80))")
    }

    /// Finding: after SIGUSR1 (a reload's `-sf`) the old process went on serving the shared stats
    /// listener while a session kept it alive: half the requests (and admin actions) reached it.
    @Test func aSoftStoppingProcessServesNoStats() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let stats = RuntimeHarness.freePort(), rw = RuntimeHarness.freePort()
        let socketPath = RuntimeSocketTests.socketPath()
        defer { unlink(socketPath) }
        let text = Self.config(stats: stats, rw: rw, backendPort: cluster.members[0].dbPort,
                               global: "    stats socket \(socketPath) level admin")
        let old = try GProxyProcess(config: text)
        defer { old.stop(); unlink(old.configPath) }
        #expect(RuntimeHarness.eventually { Self.pagePid(stats) == old.pid })
        // A long session keeps the old process alive after it is told to finish.
        let session = try SimulatedTestClient(port: rw)
        #expect(session.readLine(timeoutMs: 2000) != nil)
        let new = try GProxyProcess(config: text, replacing: old, configPath: old.configPath)
        defer { new.stop() }
        #expect(RuntimeHarness.eventually { Self.pagePid(stats) == new.pid })
        usleep(300_000)
        #expect(old.isRunning, "the session keeps the old process")
        let pids = (0..<30).map { _ in Self.pagePid(stats) }
        #expect(pids.allSatisfy { $0 == new.pid }, "answered by \(Set(pids.map { $0 ?? -1 }))")
        // The old process has let go of every listener it had (stats, runtime socket, frontends).
        let held = Self.listeningSockets(of: old.pid)
        #expect(held.isEmpty, "old process still holds \(held.count) listening socket(s)")
        session.shutdownWrite()
        _ = session.readToEnd(timeoutMs: 2000)
        #expect(RuntimeHarness.eventually { !old.isRunning })
    }

    /// Inodes of listening sockets (TCP LISTEN, UNIX accepting) among `pid`'s descriptors.
    static func listeningSockets(of pid: Int32) -> [String] {
        var listening = Set<String>()
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: " ")
                if f.count > 9, f[3] == "0A" { listening.insert(String(f[9])) }
            }
        }
        let unix = (try? String(contentsOfFile: "/proc/net/unix", encoding: .utf8)) ?? ""
        for line in unix.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ")
            // Flags 00010000: __SO_ACCEPTCON, a listening socket.
            if f.count > 6, f[3] == "00010000" { listening.insert(String(f[6])) }
        }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
            .filter { $0.hasPrefix("socket:[") }
            .map { String($0.dropFirst(8).dropLast()) }
            .filter { listening.contains($0) }
    }
}
