import CEpoll
import Glibc
import Splicer
import Testing
@testable import gproxy

/// The checker against the simulated Patroni cluster: routing follows Patroni's answers.
@Suite(.serialized) struct HealthCheckLiveTests {
    @Test func primaryPortFollowsASwitchoverAndReplicasRotate() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        let rw = RuntimeHarness.freePort(), ro = RuntimeHarness.freePort()
        let h = try RuntimeHarness(RuntimeHarness.seedConfig(cluster, rw: rw, ro: ro))
        defer { h.stop() }
        // Settled: only pg1 UP for writes, only replicas for reads.
        #expect(RuntimeHarness.eventually {
            h.server("opengauss", "pg2")?.status == "DOWN" && h.server("opengauss_balance", "pg1")?.status == "DOWN"
                && h.server("opengauss_balance", "pg4")?.status == "UP"
        })
        for _ in 0..<4 { #expect(RuntimeHarness.nodeBehind(port: rw) == "pg1") }
        let reads = (0..<6).compactMap { _ in RuntimeHarness.nodeBehind(port: ro) }
        #expect(Set(reads) == ["pg2", "pg3", "pg4"])
        #expect(Array(reads[0..<3]) == Array(reads[3..<6]))

        _ = try cluster.switchover(to: "pg2")
        #expect(RuntimeHarness.eventually { RuntimeHarness.nodeBehind(port: rw) == "pg2" })
        // The old primary comes back as a replica: two good checks, then it serves reads again.
        #expect(RuntimeHarness.eventually {
            h.server("opengauss_balance", "pg1")?.status == "UP" && h.server("opengauss_balance", "pg2")?.status == "DOWN"
        })
        let after = Set((0..<6).compactMap { _ in RuntimeHarness.nodeBehind(port: ro) })
        #expect(after == ["pg1", "pg3", "pg4"])
    }

    @Test func equalWeightsRotateInDeclarationOrderForThirtyConnections() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        let ro = RuntimeHarness.freePort()
        var text = "listen ro\n    bind 127.0.0.1:\(ro)\n    balance roundrobin\n"
        for m in cluster.members { text += "    server \(m.name) 127.0.0.1:\(m.dbPort)\n" }
        let h = try RuntimeHarness(text)
        defer { h.stop() }
        let order = (0..<30).compactMap { _ in RuntimeHarness.nodeBehind(port: ro) }
        let expected = (0..<30).map { ["pg1", "pg2", "pg3", "pg4"][$0 % 4] }
        #expect(order == expected)
    }

    @Test func shutdownSessionsCutsSessionsOfTheDemotedPrimary() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        let rw = RuntimeHarness.freePort(), ro = RuntimeHarness.freePort()
        let h = try RuntimeHarness(RuntimeHarness.seedConfig(cluster, rw: rw, ro: ro))
        defer { h.stop() }
        #expect(RuntimeHarness.eventually { h.server("opengauss", "pg2")?.status == "DOWN" })
        let session = try SimulatedTestClient(port: rw)
        #expect(session.readLine(timeoutMs: 2000)?.contains("node=pg1") == true)
        _ = try cluster.switchover(to: "pg3")
        // fall 3 at inter 100 ms: cut within a second or so, by the proxy (EOF), not by pg1.
        let (_, end) = session.readToEnd(timeoutMs: 5000)
        #expect(end == .eof)
        #expect(h.server("opengauss", "pg1")?.status == "DOWN")
    }

    @Test(arguments: [
        (SimulatedAPIFault.refuse, CheckStatusCode.l4connect),
        (.hang, .l7timeout),
        (.resetAfterRequest, .l7response),
        (.garbage, .l7response),
        (.closeWithoutResponse, .l7response),
        (.forceStatus(503), .l7status),
        (.slow(ms: 600), .l7timeout),
    ])
    func faultyHealthEndpointsAreClassifiedAndMarkTheServerDown(_ fault: SimulatedAPIFault, _ status: CheckStatusCode) throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let port = RuntimeHarness.freePort()
        let m = cluster.members[0]
        let h = try RuntimeHarness(RuntimeHarness.oneCheckedMember(m, port: port, options: "inter 300 rise 1 fall 1"))
        defer { h.stop() }
        #expect(RuntimeHarness.eventually { h.server("rw", m.name)?.checkStatus == .l7ok })
        cluster.setFault(node: m.name, fault: fault)
        #expect(RuntimeHarness.eventually { h.server("rw", m.name)?.status == "DOWN" })
        #expect(h.server("rw", m.name)?.checkStatus == status)
        // No server left: HAProxy accepts, then closes at once.
        let c = try SimulatedTestClient(port: port)
        let (bytes, end) = c.readToEnd(timeoutMs: 2000)
        #expect(bytes.isEmpty && end == .eof)
    }

    @Test func slowButInTimeAnswersStillPass() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let m = cluster.members[0]
        let h = try RuntimeHarness(RuntimeHarness.oneCheckedMember(m, port: RuntimeHarness.freePort(), options: "inter 500 rise 1 fall 1"))
        defer { h.stop() }
        cluster.setFault(node: m.name, fault: .slow(ms: 100))
        #expect(RuntimeHarness.eventually { (h.server("rw", m.name)?.checkDurationMs ?? 0) >= 90 })
        #expect(h.server("rw", m.name)?.status == "UP")
        #expect(h.server("rw", m.name)?.checkStatus == .l7ok)
    }

    @Test func backupServersServeOnlyWhenNoActiveServerIsUp() throws {
        let cluster = try SimulatedCluster(memberCount: 3)
        defer { cluster.stop() }
        let port = RuntimeHarness.freePort()
        let (a, b1, b2) = (cluster.members[0], cluster.members[1], cluster.members[2])
        // Tcp checks on the database ports: stopping pg1's database marks it DOWN.
        let h = try RuntimeHarness("""
            listen rw
                bind 127.0.0.1:\(port)
                # Fast checks, but a slow answer on a loaded machine is not a failure.
                timeout connect 2s
                timeout check 2s
                default-server inter 100 rise 1 fall 1
                server \(a.name) 127.0.0.1:\(a.dbPort) check
                server \(b1.name) 127.0.0.1:\(b1.dbPort) check backup
                server \(b2.name) 127.0.0.1:\(b2.dbPort) check backup

            """)
        defer { h.stop() }
        #expect(RuntimeHarness.eventually { h.server("rw", a.name)?.checkStatus == .l4ok })
        for _ in 0..<3 { #expect(RuntimeHarness.nodeBehind(port: port) == a.name) }
        try cluster.setDatabase(node: a.name, up: false)
        #expect(RuntimeHarness.eventually { h.server("rw", a.name)?.status == "DOWN" })
        // Only the first usable backup takes traffic (no `option allbackups`).
        for _ in 0..<3 { #expect(RuntimeHarness.nodeBehind(port: port) == b1.name) }
        try cluster.setDatabase(node: a.name, up: true)
        #expect(RuntimeHarness.eventually { RuntimeHarness.nodeBehind(port: port) == a.name })
    }

    @Test func shutdownSessionsFromTheRuntimeAPICutsOnlyThatServersSessions() throws {
        let cluster = try SimulatedCluster(memberCount: 2)
        defer { cluster.stop() }
        let port = RuntimeHarness.freePort()
        let (a, b) = (cluster.members[0], cluster.members[1])
        let h = try RuntimeHarness("""
            listen rw
                bind 127.0.0.1:\(port)
                server \(a.name) 127.0.0.1:\(a.dbPort)
                server \(b.name) 127.0.0.1:\(b.dbPort)

            """, workers: 1)
        defer { h.stop() }
        let onA = try SimulatedTestClient(port: port)
        let onB = try SimulatedTestClient(port: port)
        #expect(onA.readLine(timeoutMs: 2000)?.contains("node=\(a.name)") == true)
        #expect(onB.readLine(timeoutMs: 2000)?.contains("node=\(b.name)") == true)
        #expect(h.runtime.shutdownSessions(backend: "rw", server: a.name) == nil)
        #expect(onA.readToEnd(timeoutMs: 3000).1 == .eof)
        onB.send("alive")
        guard case .success(let echo) = onB.readChunk(timeoutMs: 2000) else {
            Issue.record("the other server's session was cut")
            return
        }
        #expect(echo == Array("alive".utf8))
        // The server stays in service for new sessions.
        #expect(h.server("rw", a.name)?.status == "no check")
    }

    @Test func anActiveServerComingBackCutsTheBackupSessions() throws {
        let cluster = try SimulatedCluster(memberCount: 2)
        defer { cluster.stop() }
        let port = RuntimeHarness.freePort()
        let (a, b) = (cluster.members[0], cluster.members[1])
        let h = try RuntimeHarness("""
            listen rw
                bind 127.0.0.1:\(port)
                # Fast checks, but a slow answer on a loaded machine is not a failure.
                timeout connect 2s
                timeout check 2s
                default-server inter 100 rise 1 fall 1
                server \(a.name) 127.0.0.1:\(a.dbPort) check on-marked-up shutdown-backup-sessions
                server \(b.name) 127.0.0.1:\(b.dbPort) check backup

            """)
        defer { h.stop() }
        #expect(RuntimeHarness.eventually { h.server("rw", a.name)?.checkStatus == .l4ok })
        try cluster.setDatabase(node: a.name, up: false)
        #expect(RuntimeHarness.eventually { h.server("rw", a.name)?.status == "DOWN" })
        let onBackup = try SimulatedTestClient(port: port)
        #expect(onBackup.readLine(timeoutMs: 2000)?.contains("node=\(b.name)") == true)
        try cluster.setDatabase(node: a.name, up: true)
        // pg1 is UP again: the session on the backup is cut by the proxy (U-), new ones go to pg1.
        #expect(onBackup.readToEnd(timeoutMs: 5000).1 == .eof)
        #expect(RuntimeHarness.nodeBehind(port: port) == a.name)
    }

    @Test func riseAndFallCountLiveChecksExactly() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let m = cluster.members[0]
        let h = try RuntimeHarness(RuntimeHarness.oneCheckedMember(m, port: RuntimeHarness.freePort(), options: "inter 150 rise 3 fall 4"))
        defer { h.stop() }
        #expect(RuntimeHarness.eventually { h.server("rw", m.name)?.status == "UP" })
        cluster.setFault(node: m.name, fault: .forceStatus(503))
        // Every intermediate state is seen on the way down: UP 3/4, 2/4, 1/4, then DOWN.
        var seen: [String] = []
        _ = RuntimeHarness.eventually(5000) {
            if let s = h.server("rw", m.name)?.status, seen.last != s { seen.append(s) }
            return seen.last == "DOWN"
        }
        #expect(seen.suffix(4) == ["UP 3/4", "UP 2/4", "UP 1/4", "DOWN"])
        // Failed checks are counted while health > 0 only: exactly `fall` of them.
        #expect(h.server("rw", m.name)?.checkFailures == 4)
        cluster.setFault(node: m.name, fault: .normal)
        seen = []
        _ = RuntimeHarness.eventually(5000) {
            if let s = h.server("rw", m.name)?.status, seen.last != s { seen.append(s) }
            return seen.last == "UP"
        }
        #expect(seen.suffix(3) == ["DOWN 1/3", "DOWN 2/3", "UP"])
    }
}

/// A connect that never completes is a Layer4 timeout (not a Layer7 one).
@Suite(.serialized) struct LayerFourTimeoutTests {
    @Test func aFullAcceptQueueGivesL4TOUT() throws {
        // A listener that never accepts, with its backlog full: further SYNs are dropped, so the
        // check's connect hangs until the check times out.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        listen(fd, 0)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = UInt16(bigEndian: addr.sin_port)
        // Fill the accept queue with non-blocking connects (a blocking one would hang here).
        let fillers: [Int32] = (0..<2).map { _ in
            let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var a = addr
            _ = withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            return c
        }
        defer { fillers.forEach { close($0) } }
        usleep(50_000)
        let h = try RuntimeHarness("""
            listen rw
                bind 127.0.0.1:\(RuntimeHarness.freePort())
                option httpchk
                server s1 127.0.0.1:\(port) check inter 300 rise 1 fall 1

            """)
        defer { h.stop() }
        #expect(RuntimeHarness.eventually { h.server("rw", "s1")?.status == "DOWN" })
        #expect(h.server("rw", "s1")?.checkStatus == .l4timeout)
    }
}
