// The simulated cluster as a whole: switchover (API and HTTP), failover, membership, demo config.

#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import gproxy

@Suite struct SimulatedClusterTests {
    @Test func defaultClusterHasOnePrimaryAndThreeReplicas() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        #expect(cluster.members.map(\.name) == ["pg1", "pg2", "pg3", "pg4"])
        #expect(cluster.leaderName == "pg1")
        #expect(cluster.timeline == 1)
        let ports = cluster.members.flatMap { [$0.dbPort, $0.apiPort] }
        #expect(Set(ports).count == 8 && !ports.contains(0))
    }

    @Test func switchoverFlipsAnswersAndBumpsTimeline() throws {
        let cluster = try SimulatedCluster(memberCount: 3)
        defer { cluster.stop() }
        let pg1 = try #require(cluster.member("pg1"))
        let pg2 = try #require(cluster.member("pg2"))
        #expect(try cluster.switchover(to: "pg2") == "pg2")
        #expect(cluster.timeline == 2)
        #expect(try simulatedOptions(pg1.apiPort) == simulated503)
        #expect(try simulatedOptions(pg1.apiPort, "/replica") == simulatedOK)
        #expect(try simulatedOptions(pg2.apiPort) == simulatedOK)
        let client = try SimulatedTestClient(port: pg2.dbPort)
        #expect(client.readLine().hasPrefix("gproxy-demo node=pg2 role=primary"))
        #expect(throws: SimulatedSwitchoverError.self) { try cluster.switchover(to: "nope") }
    }

    @Test func switchoverThroughRESTLikeCurl() throws {
        let cluster = try SimulatedCluster(memberCount: 3)
        defer { cluster.stop() }
        let port = try #require(cluster.member("pg1")).apiPort
        let body = #"{"candidate":"pg3"}"#
        let request = "POST /switchover HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Content-Type: application/x-www-form-urlencoded\r\n\r\n" + body
        let (reply, _) = try simulatedHTTP(port, request)
        #expect(reply.hasPrefix("HTTP/1.0 200 OK\r\n"))
        #expect(reply.hasSuffix("\r\n\r\nSuccessfully switched over to \"pg3\""))
        #expect(cluster.leaderName == "pg3" && cluster.timeline == 2)

        let wrong = #"{"leader":"pg1","candidate":"pg2"}"#
        let (refused, _) = try simulatedHTTP(
            port, "POST /failover HTTP/1.0\r\nContent-Length: \(wrong.utf8.count)\r\n\r\n" + wrong)
        #expect(refused.hasPrefix("HTTP/1.0 412 Precondition Failed\r\n"))
        #expect(cluster.leaderName == "pg3")
    }

    @Test func failoverKillsLeaderAndElects() throws {
        let cluster = try SimulatedCluster(memberCount: 3)
        defer { cluster.stop() }
        let pg1 = try #require(cluster.member("pg1"))
        #expect(cluster.failover(killLeader: true) == "pg2")
        #expect(cluster.timeline == 2)
        #expect(throws: SimulatedConnectError(errno: ECONNREFUSED)) { try SimulatedTestClient(port: pg1.apiPort) }
        #expect(throws: SimulatedConnectError(errno: ECONNREFUSED)) { try SimulatedTestClient(port: pg1.dbPort) }
        #expect(try simulatedOptions(try #require(cluster.member("pg2")).apiPort) == simulatedOK)

        try cluster.startMember("pg1")  // comes back as a replica
        #expect(try simulatedOptions(pg1.apiPort, "/replica") == simulatedOK)
    }

    @Test func delayedElectionLeavesClusterUnlocked() async throws {
        let cluster = try SimulatedCluster(memberCount: 2)
        defer { cluster.stop() }
        let pg2 = try #require(cluster.member("pg2")).apiPort
        #expect(cluster.failover(killLeader: false, electionDelayMs: 300) == nil)
        #expect(cluster.leaderName == nil)
        #expect(try simulatedOptions(pg2) == simulated503)
        // Poll rather than sleep a fixed time: the machine is shared and may be slow.
        for _ in 0..<100 where cluster.leaderName == nil { try await Task.sleep(for: .milliseconds(20)) }
        #expect(cluster.leaderName == "pg2")
        #expect(try simulatedOptions(pg2) == simulatedOK)
    }

    @Test func addAndRemoveMembers() throws {
        let cluster = try SimulatedCluster(memberCount: 2)
        defer { cluster.stop() }
        let pg5 = try cluster.addMember(name: "pg5")
        #expect(try simulatedOptions(pg5.apiPort, "/replica") == simulatedOK)
        #expect(cluster.members.map(\.name) == ["pg1", "pg2", "pg5"])
        cluster.removeMember("pg5")
        #expect(cluster.members.map(\.name) == ["pg1", "pg2"])
        #expect(throws: SimulatedConnectError(errno: ECONNREFUSED)) { try SimulatedTestClient(port: pg5.apiPort) }
    }

    @Test func explicitPortsAreUsed() throws {
        // Borrow two free ports by starting and stopping a throwaway cluster.
        let probe = try SimulatedCluster(memberCount: 1)
        let (db, api) = (probe.members[0].dbPort, probe.members[0].apiPort)
        probe.stop()
        let cluster = try SimulatedCluster(memberCount: 1, dbPorts: [db], apiPorts: [api])
        defer { cluster.stop() }
        #expect(cluster.members[0].dbPort == db && cluster.members[0].apiPort == api)
    }

    /// The seed's ports (5000, 5001, stats on 7000); `--demo-port-base N` keeps their spacing.
    @Test func demoPortsFollowTheSeed() throws {
        #expect(try CommandLineOptions.parse(["--demo"]).demoPortBase == 5000)
        let seed = DemoPorts(base: 5000)
        #expect([seed.readWrite, seed.readOnly, seed.stats] == [5000, 5001, 7000])
        let moved = DemoPorts(base: 15000)
        #expect([moved.readWrite, moved.readOnly, moved.stats] == [15000, 15001, 17000])
        #expect(throws: CommandLineOptions.Failure.self) { try CommandLineOptions.parse(["--demo", "--demo-port-base", "63536"]) }
        #expect(try CommandLineOptions.parse(["--demo", "--demo-port-base", "63535"]).demoPortBase == 63535)
    }

    @Test func demoConfigFollowsSeedLayout() throws {
        let cluster = try SimulatedCluster()
        defer { cluster.stop() }
        let text = demoConfigText(cluster: cluster, portBase: 15000)
        let pg1 = cluster.members[0]
        #expect(text.contains("listen opengauss\n    bind 127.0.0.1:15000\n    option httpchk\n    http-check expect status 200\n"))
        #expect(text.contains("    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions\n"))
        #expect(text.contains("    server pg1 127.0.0.1:\(pg1.dbPort) maxconn 100 check port \(pg1.apiPort)\n"))
        #expect(text.contains("listen opengauss_balance\n    bind 127.0.0.1:15001\n    mode tcp\n    option tcplog\n"))
        #expect(text.contains("    option httpchk OPTIONS /replica\n"))
        #expect(text.contains("check port \(pg1.apiPort) inter 5000 rise 2 fall 2\n"))
        #expect(text.contains("listen stats\n    mode http\n    bind 127.0.0.1:17000\n    stats enable\n    stats uri /\n"))
        #expect(text.components(separatedBy: "maxconn 100 check port").count == 9)
        let banner = demoBannerText(cluster: cluster, portBase: 15000)
        #expect(banner.contains("nc 127.0.0.1 15000"))
        #expect(banner.contains("nc 127.0.0.1 15001"))
        #expect(banner.contains("curl http://127.0.0.1:17000/"))
        #expect(banner.contains("curl -s -XPOST http://127.0.0.1:\(pg1.apiPort)/switchover -d '{\"candidate\":\"pg2\"}'"))
    }
}
