import CEpoll
// The simulated database port: banner, echo, half-close, stop/start and reset.

#if canImport(Glibc)
import Glibc
#endif
import Splicer
import Synchronization
import Testing
@testable import gproxy

@Suite struct SimulatedNodeTests {
    @Test func bannerThenEcho() throws {
        let cluster = try SimulatedCluster(memberCount: 2)
        defer { cluster.stop() }
        let pg1 = try #require(cluster.member("pg1"))
        let client = try SimulatedTestClient(port: pg1.dbPort)
        #expect(client.readLine() == "gproxy-demo node=pg1 role=primary port=\(pg1.dbPort)\n")
        let payload: [UInt8] = Array("hello\r\n".utf8) + [0, 255, 10]
        client.send(payload)
        #expect(client.read(count: payload.count) == payload)

        let pg2 = try #require(cluster.member("pg2"))
        let replica = try SimulatedTestClient(port: pg2.dbPort)
        #expect(replica.readLine() == "gproxy-demo node=pg2 role=replica port=\(pg2.dbPort)\n")
    }

    @Test func halfCloseEchoesEverythingThenCloses() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let port = try #require(cluster.member("pg1")).dbPort
        let client = try SimulatedTestClient(port: port)
        let big = [UInt8](repeating: 0x61, count: 200_000)
        // Send from another thread: the echo fills our receive buffer while we are still writing.
        let sender = NamedThread.start(name: "test-sender") { [fd = client.fd] in
            var off = 0
            while off < big.count {
                let n = big.withUnsafeBytes { send(fd, $0.baseAddress! + off, big.count - off, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                off += n
            }
            shutdown(fd, Int32(SHUT_WR))
        }
        let (bytes, end) = client.readToEnd()
        NamedThread.join(sender)
        let banner = "gproxy-demo node=pg1 role=primary port=\(port)\n"
        #expect(end == .eof)
        #expect(bytes.count == banner.utf8.count + big.count)
        #expect(Array(bytes.prefix(banner.utf8.count)) == Array(banner.utf8))
        #expect(bytes.dropFirst(banner.utf8.count).allSatisfy { $0 == 0x61 })
    }

    @Test func stopDatabaseRefusesAndResets() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let port = try #require(cluster.member("pg1")).dbPort
        let client = try SimulatedTestClient(port: port)
        _ = client.readLine()
        try cluster.setDatabase(node: "pg1", up: false, resetConnections: true)
        #expect(throws: SimulatedConnectError(errno: ECONNREFUSED)) { try SimulatedTestClient(port: port) }
        #expect(client.readToEnd().1 == .reset)
        try cluster.setDatabase(node: "pg1", up: true)
        let again = try SimulatedTestClient(port: port)
        #expect(again.readLine().hasPrefix("gproxy-demo node=pg1 role=primary"))
    }

    /// A session the old leader accepted before its demotion must never greet as "replica": real
    /// Postgres fixes a session's role when it starts, and the demotion resets it. The banner used to
    /// be built on the connection's own thread, which could run after the stop and the role change
    /// (PatroniAwareTests saw `pg1 role=replica` through the write port once in ten suite runs).
    /// Here the role lookup is held until the database has stopped and the role has flipped.
    @Test func aSessionFromBeforeADemotionNeverGreetsAsReplica() throws {
        let role = Locked(SimulatedRole.primary)
        let lookups = Atomic<Int>(0)
        let gateOpen = Atomic<Bool>(true)
        let node = SimulatedNode(name: "pgx") {
            lookups.add(1, ordering: .relaxed)
            while !gateOpen.load(ordering: .acquiring) { usleep(1000) }
            return role.withLock { $0 }
        }
        let port = try node.start()
        defer { node.stop() }
        gateOpen.store(false, ordering: .releasing)
        let client = try SimulatedTestClient(port: port)
        #expect(RuntimeHarness.eventually(5000) { lookups.load(ordering: .relaxed) == 1 })
        // The demotion: the port stops, sessions are reset (on another thread: stopping waits for
        // the accept thread, which may be the one held in the lookup), then the role flips.
        let stopper = NamedThread.start(name: "test-demote") { node.stopDatabase(resetConnections: true) }
        #expect(RuntimeHarness.eventually(5000) { !node.isListening })
        role.withLock { $0 = .replica }
        gateOpen.store(true, ordering: .releasing)
        NamedThread.join(stopper)
        let line: String = client.readLine(timeoutMs: 3000)
        #expect(!line.contains("role=replica"), "a pre-demotion session greeted with \(line)")
    }
}
