// The simulated Patroni REST API: exact reply bytes, JSON documents, health rules and fault knobs.

import Foundation
import Testing
@testable import gproxy

@Suite struct SimulatedPatroniAPITests {
    /// Splits a GET reply into header lines and the JSON body.
    private func jsonReply(_ port: UInt16, _ path: String) throws -> ([String], [String: Any]) {
        let (text, end) = try simulatedHTTP(port, "GET \(path) HTTP/1.0\r\n\r\n")
        #expect(end == .eof)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let body = try JSONSerialization.jsonObject(with: Data(parts.dropFirst().joined(separator: "\r\n\r\n").utf8))
        return (parts[0].components(separatedBy: "\r\n"), try #require(body as? [String: Any]))
    }

    @Test func optionsAndHeadReplyBytes() throws {
        let cluster = try SimulatedCluster(memberCount: 2)
        defer { cluster.stop() }
        let primary = try #require(cluster.member("pg1")).apiPort
        let replica = try #require(cluster.member("pg2")).apiPort
        #expect(try simulatedOptions(primary, "/") == simulatedOK)
        #expect(try simulatedOptions(replica, "/") == simulated503)
        #expect(try simulatedOptions(primary, "/replica") == simulated503)
        #expect(try simulatedOptions(replica, "/replica") == simulatedOK)
        #expect(try simulatedHTTP(primary, "HEAD /master HTTP/1.0\r\n\r\n").0 == simulatedOK)
        #expect(try simulatedOptions(replica, "/read-only") == simulatedOK)
        #expect(try simulatedOptions(primary, "/read-only") == simulatedOK)
        #expect(try simulatedOptions(replica, "/health") == simulatedOK)
        #expect(try simulatedOptions(primary, "/patroni") == simulated503)  // OPTIONS has no dedicated handler
        #expect(try simulatedOptions(primary, "/nonsense") == simulated503)
        #expect(cluster.member("pg1")?.api.lastRequestText == "OPTIONS /nonsense HTTP/1.0\r\n\r\n")
    }

    @Test func getHealthEndpointSendsHeadersAndJSON() throws {
        let cluster = try SimulatedCluster(memberCount: 2)
        defer { cluster.stop() }
        let (headers, doc) = try jsonReply(try #require(cluster.member("pg1")).apiPort, "/")
        #expect(headers[0] == "HTTP/1.0 200 OK")
        #expect(headers.contains("Server: BaseHTTP/0.6 Python/3.11.2"))
        #expect(headers.contains { $0.hasPrefix("Date: ") && $0.hasSuffix(" GMT") })
        #expect(headers.contains("Content-Type: application/json"))
        #expect(!headers.contains { $0.lowercased().hasPrefix("content-length") })
        #expect(doc["role"] as? String == "primary")
        #expect(doc["state"] as? String == "running")
        #expect(doc["timeline"] as? Int == 1)
        #expect((doc["patroni"] as? [String: Any])?["name"] as? String == "pg1")

        let (rh, rdoc) = try jsonReply(try #require(cluster.member("pg2")).apiPort, "/primary")
        #expect(rh[0] == "HTTP/1.0 503 Service Unavailable")  // GET sends the JSON for 503 too
        #expect(rdoc["role"] as? String == "replica")
        #expect(rdoc["replication_state"] as? String == "streaming")
    }

    @Test func clusterEndpointListsMembersWithLeader() throws {
        let cluster = try SimulatedCluster(memberCount: 3)
        defer { cluster.stop() }
        cluster.setLag(node: "pg3", bytes: 4096)
        let (headers, doc) = try jsonReply(try #require(cluster.member("pg2")).apiPort, "/cluster")
        #expect(headers[0] == "HTTP/1.0 200 OK")
        let members = try #require(doc["members"] as? [[String: Any]])
        #expect(members.map { $0["name"] as? String } == ["pg1", "pg2", "pg3"])
        #expect(members.map { $0["role"] as? String } == ["leader", "replica", "replica"])
        #expect(members.map { $0["state"] as? String } == ["running", "streaming", "streaming"])
        #expect(members[0]["lag"] == nil)
        #expect(members[2]["lag"] as? Int == 4096)
        let pg1 = try #require(cluster.member("pg1"))
        #expect(members[0]["api_url"] as? String == "http://127.0.0.1:\(pg1.apiPort)/patroni")
        #expect(members[0]["port"] as? Int == Int(pg1.dbPort))
        #expect(doc["scope"] as? String == "opengauss")
    }

    @Test func replicaRulesFollowLagTagsAndState() throws {
        let cluster = try SimulatedCluster(memberCount: 3)
        defer { cluster.stop() }
        let pg2 = try #require(cluster.member("pg2")).apiPort
        cluster.setLag(node: "pg2", bytes: 2 * 1_048_576)
        #expect(try simulatedOptions(pg2, "/replica?lag=1MB") == simulated503)
        #expect(try simulatedOptions(pg2, "/replica?lag=3MB") == simulatedOK)
        #expect(try simulatedOptions(pg2, "/replica?lag=bogus") == simulatedOK)  // unparsable: no limit
        cluster.setTag(node: "pg2", "noloadbalance", "true")
        #expect(try simulatedOptions(pg2, "/replica") == simulated503)
        #expect(try simulatedOptions(pg2, "/health") == simulatedOK)
        cluster.setTag(node: "pg2", "noloadbalance", nil)
        cluster.setTag(node: "pg2", "dc", "east")
        #expect(try simulatedOptions(pg2, "/replica?tag_dc=east") == simulatedOK)
        #expect(try simulatedOptions(pg2, "/replica?tag_dc=west") == simulated503)
        cluster.setState(node: "pg2", state: .starting)
        #expect(try simulatedOptions(pg2, "/replica") == simulated503)
        #expect(try simulatedOptions(pg2, "/health") == simulated503)
        // The leader key alone decides /primary, even while the leader's Postgres is down.
        cluster.setState(node: "pg1", state: .stopped)
        let pg1 = try #require(cluster.member("pg1")).apiPort
        #expect(try simulatedOptions(pg1, "/") == simulatedOK)
        #expect(try simulatedOptions(pg1, "/health") == simulated503)
    }

    @Test func parseLagUnits() {
        #expect(PatroniHealthRules.parseLag("100") == 100)
        #expect(PatroniHealthRules.parseLag("10MB") == 10 * 1_048_576)
        #expect(PatroniHealthRules.parseLag("1024kB") == 1_048_576)
        #expect(PatroniHealthRules.parseLag("1 GB") == 1_073_741_824)
        #expect(PatroniHealthRules.parseLag("10mb") == nil)
        #expect(PatroniHealthRules.parseLag("x") == nil)
    }

    @Test func roleOverrideMakesTwoLeaders() throws {
        let cluster = try SimulatedCluster(memberCount: 2)
        defer { cluster.stop() }
        cluster.setRoleOverride(node: "pg2", role: .primary)
        #expect(try simulatedOptions(try #require(cluster.member("pg1")).apiPort) == simulatedOK)
        #expect(try simulatedOptions(try #require(cluster.member("pg2")).apiPort) == simulatedOK)
    }

    @Test func faultKnobs() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let member = try #require(cluster.member("pg1"))
        let port = member.apiPort
        let check = "OPTIONS / HTTP/1.0\r\n\r\n"

        cluster.setFault(node: "pg1", fault: .refuse)
        #expect(throws: SimulatedConnectError(errno: ECONNREFUSED)) { try SimulatedTestClient(port: port) }
        cluster.setFault(node: "pg1", fault: .normal)
        #expect(try simulatedOptions(port) == simulatedOK)

        cluster.setFault(node: "pg1", fault: .hang)
        let hung = try simulatedHTTP(port, check, timeoutMs: 150)
        #expect(hung.0.isEmpty && hung.1 == .timeout)

        cluster.setFault(node: "pg1", fault: .resetAfterRequest)
        #expect(try simulatedHTTP(port, check).1 == .reset)

        cluster.setFault(node: "pg1", fault: .garbage)
        #expect(try simulatedHTTP(port, check) == ("GARBAGE\r\n\r\n", .eof))

        cluster.setFault(node: "pg1", fault: .closeWithoutResponse)
        #expect(try simulatedHTTP(port, check) == ("", .eof))

        cluster.setFault(node: "pg1", fault: .forceStatus(404))
        #expect(try simulatedOptions(port) == "HTTP/1.0 404 Not Found\r\n\r\n")

        cluster.setFault(node: "pg1", fault: .slow(ms: 150))
        let start = ContinuousClock.now
        #expect(try simulatedOptions(port) == simulatedOK)
        #expect(ContinuousClock.now - start >= .milliseconds(140))
    }

    @Test func countsRequestsAndRecordsBytes() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let api = try #require(cluster.member("pg1")).api
        for _ in 0..<5 { _ = try simulatedOptions(api.port, "/replica") }
        #expect(api.requestCount == 5)
        let times = api.requestTimesMs
        #expect(times.count == 5 && times == times.sorted())
        #expect(api.lastRequestBytes == Array("OPTIONS /replica HTTP/1.0\r\n\r\n".utf8))
        api.resetCounters()
        #expect(api.requestCount == 0 && api.requestTimesMs.isEmpty)
    }
}
