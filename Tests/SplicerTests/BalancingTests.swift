import Glibc
import Testing
@testable import Splicer

/// Server choice per balance algorithm, without sockets: `BackendShared.pick` on a routing table.
@Suite struct BalancingTests {
    static func backend(_ n: Int, _ balance: BalanceAlgorithm, weights: [Int]? = nil, maxconn: [Int]? = nil,
                        running: [Bool]? = nil) -> (BackendShared, BackendRoute) {
        let servers = (0..<n).map { i in
            ServerSpec(name: "s\(i + 1)", address: SocketAddress(ip: "127.0.0.1", port: UInt16(1000 + i))!,
                       maxconn: maxconn?[i] ?? 0, weight: weights?[i] ?? 1)
        }
        let spec = BackendSpec(name: "be", servers: servers, balance: balance)
        let engineSpec = EngineSpec(workers: 1, frontends: [], backends: [spec])
        let states = servers.indices.map { ServerRuntimeState(running: running?[$0] ?? true, weight: servers[$0].weight) }
        let table = RoutingTable(generation: 1, spec: engineSpec, states: [states])
        return (BackendShared(index: 0, spec: spec), table.backends[0])
    }

    /// The server picked (its slot taken), or nil when the pick was not a server.
    static func server(_ p: BackendShared.Pick) -> Int? {
        if case .server(let s) = p { return s }
        return nil
    }

    static func client(_ ip: String, port: UInt16 = 40000) -> UInt32 { SocketAddress(ip: ip, port: port)!.ipHash }

    @Test func sourceSpreadsClientAddressesAndKeepsEachAddressOnOneServer() {
        let (b, route) = Self.backend(3, .source)
        var byServer = [0, 0, 0]
        for i in 0..<90 {
            let ip = "10.\(i / 30).\(i % 30).\(7 + i)"
            let first = Self.server(b.pick(route, clientHash: Self.client(ip, port: 40000)))
            let again = Self.server(b.pick(route, clientHash: Self.client(ip, port: 51234)))
            #expect(first != nil && first == again, "\(ip) moved between servers")
            if let s = first { byServer[s] += 1 }
        }
        // Every server gets a share of 90 distinct addresses (a constant hash would put all on one).
        #expect(byServer.allSatisfy { $0 >= 10 }, "\(byServer)")
    }

    @Test func sourceHashIgnoresThePortAndCoversIPv6() {
        #expect(Self.client("192.0.2.10", port: 1) == Self.client("192.0.2.10", port: 65000))
        #expect(Self.client("192.0.2.10") != Self.client("192.0.2.11"))
        #expect(Self.client("2001:db8::1", port: 1) == Self.client("2001:db8::1", port: 2))
        #expect(Self.client("2001:db8::1") != Self.client("2001:db8::2"))
    }

    @Test func sourceHonoursWeights() {
        let (b, route) = Self.backend(2, .source, weights: [3, 1])
        var byServer = [0, 0]
        for i in 0..<400 {
            if let s = Self.server(b.pick(route, clientHash: Self.client("10.1.\(i / 200).\(i % 200)"))) { byServer[s] += 1 }
        }
        #expect(byServer[0] > 2 * byServer[1], "\(byServer)")
    }

    @Test func sourceReportsTheBoundServerWhenItIsFull() {
        let (b, route) = Self.backend(2, .source, maxconn: [1, 1])
        let hash = Self.client("10.9.8.7")
        let s = Self.server(b.pick(route, clientHash: hash))
        let bound: Int
        switch b.pick(route, clientHash: hash) {
        case .full(let x): bound = x
        default: bound = -2
        }
        #expect(s != nil && bound == s)
    }

    @Test func roundRobinFollowsTheWeightedSchedule() {
        let (b, route) = Self.backend(3, .roundrobin, weights: [3, 1, 2])
        let picks = (0..<12).compactMap { _ in Self.server(b.pick(route, clientHash: 0)) }
        #expect(picks.count == 12)
        #expect(Array(picks[0..<6]) == route.schedule.map(Int.init))
        #expect(Array(picks[0..<6]) == Array(picks[6..<12]))
        #expect([0, 1, 2].map { s in picks.filter { $0 == s }.count } == [6, 2, 4])
    }

    @Test func roundRobinSkipsFullServersAndAvoidsTheFailedOne() {
        let (b, route) = Self.backend(3, .roundrobin, maxconn: [1, 0, 0])
        #expect(Self.server(b.pick(route, clientHash: 0)) == 0)
        for _ in 0..<6 { #expect(Self.server(b.pick(route, clientHash: 0)) != 0) }
        // A retry that must leave server 1 never lands on it while another server has room.
        for _ in 0..<6 { #expect(Self.server(b.pick(route, clientHash: 0, avoid: 1)) == 2) }
    }

    @Test func avoidingTheOnlyServerStillPicksIt() {
        let (b, route) = Self.backend(1, .roundrobin)
        #expect(Self.server(b.pick(route, clientHash: 0, avoid: 0)) == 0)
    }

    @Test func leastconnTakesTheLeastLoadedPerWeight() {
        let (b, route) = Self.backend(3, .leastconn, weights: [1, 2, 1])
        // Load s1 with one session, s2 with two (weight 2: load 1), s3 with none.
        #expect(b.serverSessions[0].tryAcquire())
        #expect(b.serverSessions[1].tryAcquire() && b.serverSessions[1].tryAcquire())
        #expect(Self.server(b.pick(route, clientHash: 0)) == 2)
        // s1 empties: it is the least loaded again (s2 and s3 are at one session per weight unit).
        b.serverSessions[0].release()
        #expect(Self.server(b.pick(route, clientHash: 0)) == 0)
    }

    @Test func firstFillsServersInDeclarationOrder() {
        let (b, route) = Self.backend(3, .first, maxconn: [2, 1, 5])
        let picks = (0..<5).compactMap { _ in Self.server(b.pick(route, clientHash: 0)) }
        #expect(picks == [0, 0, 1, 2, 2])
        b.serverSessions[0].release()
        #expect(Self.server(b.pick(route, clientHash: 0)) == 0)
    }

    @Test func everyServerFullOrNoneEligible() {
        let (full, fullRoute) = Self.backend(2, .roundrobin, maxconn: [1, 1])
        _ = full.pick(fullRoute, clientHash: 0)
        _ = full.pick(fullRoute, clientHash: 0)
        if case .full(let bound) = full.pick(fullRoute, clientHash: 0) { #expect(bound == -1) } else {
            Issue.record("expected .full")
        }
        let (down, downRoute) = Self.backend(2, .leastconn, running: [false, false])
        if case .noServer = down.pick(downRoute, clientHash: 0) {} else { Issue.record("expected .noServer") }
    }
}
