import Glibc
import Splicer
import Synchronization
import Testing
@testable import gproxy

/// Patroni-aware routing (`patroni primary|replica`) against the simulated cluster.
@Suite(.serialized) struct PatroniAwareTests {
    static func config(_ cluster: SimulatedCluster, rw: UInt16, ro: UInt16, inter: String = "1s",
                       replicaOptions: String = "") -> String {
        var t = """
        listen rw
            bind 127.0.0.1:\(rw)
            patroni primary fast-inter 100ms
            option httpchk
            default-server inter \(inter) fall 3 rise 2 on-marked-down shutdown-sessions

        """
        for m in cluster.members { t += "    server \(m.name) 127.0.0.1:\(m.dbPort) check port \(m.apiPort)\n" }
        t += """

        listen ro
            bind 127.0.0.1:\(ro)
            patroni replica fast-inter 100ms \(replicaOptions)
            option httpchk OPTIONS /replica
            default-server inter \(inter) fall 3 rise 2 on-marked-down shutdown-sessions

        """
        for m in cluster.members { t += "    server \(m.name) 127.0.0.1:\(m.dbPort) check port \(m.apiPort)\n" }
        return t
    }

    /// A replica whose database refuses while its API still says "replica" (the moment a postmaster
    /// dies, before the next check): a read must go to another replica at once, as `patroni
    /// primary` does with a vanishing writer, not wait out `retries` on the dead one.
    @Test func aReadRefusedByAReplicaIsRedispatchedAtOnce() throws {
        let cluster = try SimulatedCluster(memberCount: 3)
        defer { cluster.stop() }
        let rw = RuntimeHarness.freePort(), ro = RuntimeHarness.freePort()
        let h = try RuntimeHarness(Self.config(cluster, rw: rw, ro: ro, inter: "10s"))
        defer { h.stop() }
        #expect(RuntimeHarness.eventually { h.server("ro", "pg2")?.status == "UP" && h.server("ro", "pg3")?.status == "UP" })
        try cluster.setDatabase(node: "pg2", up: false)
        // inter 10s: the checker has not noticed; every read must still be answered, by pg3.
        let answers = (0..<6).map { _ in Self.probe(ro)?.node }
        #expect(answers == Array(repeating: "pg3", count: 6), "answers \(answers)")
    }

    /// The banner of the node a new connection through `port` reaches: (node, role), or nil.
    static func probe(_ port: UInt16) -> (node: String, role: String)? {
        guard let c = try? SimulatedTestClient(port: port), let line = c.readLine(timeoutMs: 5000) else { return nil }
        let fields = Dictionary(uniqueKeysWithValues: line.split(separator: " ").compactMap { w -> (String, String)? in
            let kv = w.split(separator: "=", maxSplits: 1)
            return kv.count == 2 ? (String(kv[0]), String(kv[1])) : nil
        })
        guard let n = fields["node"], let r = fields["role"] else { return nil }
        return (n, r)
    }

    /// Connects through `port` in a loop until stopped, recording when each probe started and who
    /// answered (nil: the probe failed).
    final class Prober: @unchecked Sendable {
        struct Probe {
            let startedNs: UInt64
            let answer: (node: String, role: String)?
        }

        let probes = Locked<[Probe]>([])
        let stop = Atomic<Bool>(false)
        var thread: pthread_t?

        static func nowNs() -> UInt64 {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        }

        init(port: UInt16) {
            thread = NamedThread.start(name: "prober") { [self] in
                while !stop.load(ordering: .relaxed) {
                    let started = Self.nowNs()
                    let answer = PatroniAwareTests.probe(port)
                    probes.withLock { $0.append(Probe(startedNs: started, answer: answer)) }
                    usleep(5000)
                }
            }
        }

        func finish() -> [Probe] {
            stop.store(true, ordering: .relaxed)
            if let t = thread { NamedThread.join(t) }
            return probes.withLock { $0 }
        }
    }

    @Test func atStartUpNewConnectionsWaitForTheConfirmedLeader() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        let rw = RuntimeHarness.freePort()
        let h = try RuntimeHarness(Self.config(cluster, rw: rw, ro: RuntimeHarness.freePort()))
        defer { h.stop() }
        // Straight after start: HAProxy would round-robin these over all four members.
        let answers = (0..<8).compactMap { _ in Self.probe(rw) }
        #expect(answers.count == 8)
        #expect(answers.allSatisfy { $0.node == "pg1" && $0.role == "primary" })
    }

    /// Connections already waiting in the backlog when the workers start (a busy port, or sockets
    /// handed over on reload) must see the checker's start-up table, never an all-UP placeholder.
    @Test func connectionsQueuedBeforeStartWaitForTheConfirmedLeader() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        let rw = RuntimeHarness.freePort()
        var early: [SimulatedTestClient] = []
        let h = try RuntimeHarness(Self.config(cluster, rw: rw, ro: RuntimeHarness.freePort())) { _ in
            for _ in 0..<8 { early.append(try SimulatedTestClient(port: rw)) }
        }
        defer { h.stop() }
        let banners = early.map { $0.readLine(timeoutMs: 5000) ?? "" }
        #expect(banners.allSatisfy { $0.contains("node=pg1") && $0.contains("role=primary") }, "\(banners)")
    }

    @Test func switchoverRoutesNothingToANonLeaderAndNothingFails() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        let rw = RuntimeHarness.freePort()
        let h = try RuntimeHarness(Self.config(cluster, rw: rw, ro: RuntimeHarness.freePort()))
        defer { h.stop() }
        #expect(Self.probe(rw)?.node == "pg1")
        let held = try SimulatedTestClient(port: rw)
        #expect(held.readLine(timeoutMs: 2000)?.contains("node=pg1") == true)
        let prober = Prober(port: rw)
        usleep(100_000)
        let pg2 = try #require(cluster.member("pg2"))
        let checksBefore = pg2.api.requestCount
        let demotedAt = Prober.nowNs()
        _ = try cluster.switchover(to: "pg2", demoteRestartMs: 400)
        #expect(RuntimeHarness.eventually { h.server("rw", "pg2")?.status == "UP" })
        let checksToConfirm = pg2.api.requestCount - checksBefore
        usleep(800_000)  // past the old leader's restart as a replica
        let probes = prober.finish()
        let seen = probes.compactMap(\.answer)
        #expect(!seen.contains { $0.role != "primary" }, "\(seen.filter { $0.role != "primary" }) of \(seen.count)")
        #expect(seen.contains { $0.node == "pg2" })
        // A probe already connected to pg1 when the demotion reset its sessions fails as `held`
        // does (real Patroni kills them too); every probe that started after it must succeed.
        let failedAfter = probes.filter { $0.startedNs > demotedAt && $0.answer == nil }.count
        #expect(failedAfter == 0, "\(failedAfter) of \(probes.count) probes failed after the demotion began")
        // Converged within one fast poll or two, not `rise` checks `inter` apart.
        #expect(checksToConfirm <= 3)
        // The session to the demoted leader was cut.
        #expect(held.readToEnd(timeoutMs: 3000).1 != .timeout)
        #expect(h.server("rw", "pg1")?.status == "DOWN")
    }

    @Test func clientsArrivingDuringAnElectionAreQueuedThenServedByTheNewLeader() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        let rw = RuntimeHarness.freePort()
        let h = try RuntimeHarness(Self.config(cluster, rw: rw, ro: RuntimeHarness.freePort()))
        defer { h.stop() }
        #expect(Self.probe(rw)?.node == "pg1")
        _ = cluster.failover(killLeader: true, candidate: "pg3", electionDelayMs: 700)
        #expect(RuntimeHarness.eventually { h.server("rw", "pg1")?.status == "DOWN" })
        let results = Locked<[(String, String)?]>([])
        let threads = (0..<5).map { _ in
            NamedThread.start(name: "waiter") { let r = Self.probe(rw); results.withLock { $0.append(r) } }
        }
        threads.forEach { NamedThread.join($0) }
        let got = results.withLock { $0 }
        #expect(got.count == 5)
        #expect(got.allSatisfy { $0?.0 == "pg3" && $0?.1 == "primary" })
    }

    /// Real Patroni after a kill -9 of the leader's postmaster: its API keeps answering 200 on `/`
    /// with `"role": "primary", "state": "unknown"` (then `stopping`/`stopped`) until another member is
    /// promoted. That writer is unconfirmed, not gone: every member must be polled every `fast-inter`
    /// from then on, so the new leader is taken as soon as it is promoted, not at its next `inter`
    /// (the real-cluster suite saw writes held 1.3 s longer than the election for that reason).
    @Test func aLeaderWhosePostgresDiedIsUnconfirmedAndEveryMemberIsPolledFast() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        let rw = RuntimeHarness.freePort()
        let h = try RuntimeHarness(Self.config(cluster, rw: rw, ro: RuntimeHarness.freePort(), inter: "2s"))
        defer { h.stop() }
        #expect(Self.probe(rw)?.node == "pg1")
        usleep(300_000)  // past the start-up polls: back on `inter`
        // pg1's Postgres dies; Patroni still holds the key and answers 200 "primary", state not running.
        try cluster.setDatabase(node: "pg1", up: false, resetConnections: true)
        cluster.setState(node: "pg1", state: .stopped)
        #expect(RuntimeHarness.eventually(8000) { h.server("rw", "pg1")?.status == "DOWN" })
        // No client connects meanwhile (no worker hints): only the checker's own schedule asks pg3.
        let pg3 = try #require(cluster.member("pg3"))
        let before = pg3.api.requestCount
        usleep(1_000_000)
        let polls = pg3.api.requestCount - before
        #expect(polls >= 5, "pg3 asked \(polls) times in 1 s while the writer is unconfirmed (fast-inter 100ms)")
        // The election: pg3 takes the key on a new timeline and is the writer within a fast poll or two.
        let promotedAt = pg3.api.requestCount
        cluster.failover(killLeader: true, candidate: "pg3")
        #expect(RuntimeHarness.eventually(3000) { h.server("rw", "pg3")?.status == "UP" })
        // Counted in polls, not milliseconds (a loaded machine stretches time, not the schedule):
        // at `inter` (2 s) the first poll after the promotion would come up to 2 s late; at
        // `fast-inter` the next poll or two confirm it.
        let pollsToConfirm = pg3.api.requestCount - promotedAt
        #expect(pollsToConfirm <= 3, "pg3 was asked \(pollsToConfirm) times before it became the writer")
        #expect(Self.probe(rw)?.node == "pg3")
    }

    @Test func twoMembersClaimingLeadershipNeverBothGetWrites() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        let rw = RuntimeHarness.freePort()
        let h = try RuntimeHarness(Self.config(cluster, rw: rw, ro: RuntimeHarness.freePort(), inter: "100ms"))
        defer { h.stop() }
        #expect(Self.probe(rw)?.node == "pg1")
        cluster.setRoleOverride(node: "pg3", role: .primary)
        usleep(500_000)
        let nodes = Set((0..<20).compactMap { _ in Self.probe(rw)?.node })
        #expect(nodes == ["pg1"])
        #expect(h.server("rw", "pg3")?.status == "DOWN")
    }

    @Test func anUnreachableApiOfAHealthyLeaderKeepsItsSessionsAndNewClientsOnlyWait() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        let rw = RuntimeHarness.freePort()
        // inter 100 ms, fall 3: HAProxy would mark the leader DOWN after ~300 ms and cut its sessions.
        let h = try RuntimeHarness(Self.config(cluster, rw: rw, ro: RuntimeHarness.freePort(), inter: "100ms"))
        defer { h.stop() }
        let held = try SimulatedTestClient(port: rw)
        #expect(held.readLine(timeoutMs: 2000)?.contains("node=pg1") == true)
        cluster.setFault(node: "pg1", fault: .refuse)
        // fall counts: no new sessions for an unconfirmed writer...
        #expect(RuntimeHarness.eventually { h.server("rw", "pg1")?.status == "DOWN" })
        usleep(500_000)
        // ...but the established one is not cut.
        held.send("still here")
        guard case .success(let echo) = held.readChunk(timeoutMs: 2000) else {
            Issue.record("the session to the healthy leader was cut")
            return
        }
        #expect(String(decoding: echo, as: UTF8.self) == "still here")
        // A client arriving now waits in the queue, and is served as soon as the API answers again.
        let answer = Locked<(String, String)?>(nil)
        let waiter = NamedThread.start(name: "waiter") { let r = Self.probe(rw); answer.withLock { $0 = r } }
        usleep(300_000)
        cluster.setFault(node: "pg1", fault: .normal)
        NamedThread.join(waiter)
        #expect(answer.withLock { $0?.0 } == "pg1")
    }

    @Test func replicasLeaveAtOnceAndTheLeaderServesReadsWhenNoneIsLeft() throws {
        let cluster = try SimulatedCluster(memberCount: 2)
        defer { cluster.stop() }
        let ro = RuntimeHarness.freePort()
        let h = try RuntimeHarness(Self.config(cluster, rw: RuntimeHarness.freePort(), ro: ro, inter: "1s",
                                               replicaOptions: "fallback-to-leader"))
        defer { h.stop() }
        #expect(RuntimeHarness.eventually { h.server("ro", "pg2")?.status == "UP" })
        #expect(Self.probe(ro)?.node == "pg2")
        // pg2 stops replicating (its API now answers 503 with its JSON): out at the next check,
        // and reads fall back to the leader instead of failing.
        cluster.setState(node: "pg2", state: .starting)
        try cluster.setDatabase(node: "pg2", up: false, resetConnections: true)
        #expect(RuntimeHarness.eventually(8000) { h.server("ro", "pg2")?.status == "DOWN" })
        #expect(Self.probe(ro)?.node == "pg1")
    }
}

/// `patroni ... discover`: members come and go with the Patroni cluster, no config edit.
@Suite(.serialized) struct PatroniDiscoveryTests {
    @Test func membersJoinAndLeaveBothBackends() throws {
        let cluster = try SimulatedCluster(memberCount: 3)
        defer { cluster.stop() }
        let (pg1, pg2) = (cluster.members[0], cluster.members[1])
        let rw = RuntimeHarness.freePort(), ro = RuntimeHarness.freePort()
        // Only pg1 and pg2 are configured; pg3 exists in the cluster.
        let h = try RuntimeHarness("""
            listen rw
                bind 127.0.0.1:\(rw)
                patroni primary fast-inter 100ms discover max-members 4
                option httpchk
                default-server inter 200ms fall 3 rise 2 maxconn 50
                server pg1 127.0.0.1:\(pg1.dbPort) check port \(pg1.apiPort)
                server pg2 127.0.0.1:\(pg2.dbPort) check port \(pg2.apiPort)
            listen ro
                bind 127.0.0.1:\(ro)
                patroni replica fast-inter 100ms discover max-members 4
                option httpchk OPTIONS /replica
                default-server inter 200ms fall 3 rise 2 maxconn 50
                server pg1 127.0.0.1:\(pg1.dbPort) check port \(pg1.apiPort)

            """)
        defer { h.stop() }
        // pg3 (and, for reads, pg2) appear from /cluster and take reads.
        #expect(RuntimeHarness.eventually { h.server("ro", "pg3")?.status == "UP" && h.server("ro", "pg2")?.status == "UP" })
        #expect(h.server("rw", "pg3")?.status == "DOWN")
        let reads = Set((0..<6).compactMap { _ in RuntimeHarness.nodeBehind(port: ro) })
        #expect(reads == ["pg2", "pg3"])
        // A brand-new member joins the cluster: it joins both backends.
        _ = try cluster.addMember(name: "pg4")
        #expect(RuntimeHarness.eventually { h.server("ro", "pg4")?.status == "UP" })
        #expect(h.server("rw", "pg4")?.slimFromTemplate == 50)
        // It can even become the writer.
        _ = try cluster.switchover(to: "pg4")
        #expect(RuntimeHarness.eventually { RuntimeHarness.nodeBehind(port: rw) == "pg4" })
        // A member removed from the cluster leaves both backends (and the stats).
        cluster.removeMember("pg3")
        #expect(RuntimeHarness.eventually { h.server("ro", "pg3") == nil && h.server("rw", "pg3") == nil })
        let after = Set((0..<6).compactMap { _ in RuntimeHarness.nodeBehind(port: ro) })
        #expect(!after.contains("pg3"))
    }
}

extension ServerStats {
    /// The session limit a discovered member got from the default-server.
    var slimFromTemplate: Int? { counters.slim }
}
