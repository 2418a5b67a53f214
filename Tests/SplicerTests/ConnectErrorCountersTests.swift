import Glibc
import Testing
@testable import Splicer

/// econ / wretr / wredis / stot / lbtot as HAProxy 2.6 counts them. Every expected figure below was
/// measured on HAProxy 2.6.12 with the same scenario (two clients one after the other, `retries 3`,
/// servers on closed ports): econ counts a session once, when it gives up; each failed attempt
/// before that is a retry (same server) or a redispatch (counted on the server it left).
@Suite(.serialized) struct ConnectErrorCountersTests {
    struct Figures: Equatable, CustomStringConvertible {
        var econ = 0, wretr = 0, wredis = 0, stot = 0
        /// Times balancing chose the server; nil on the BACKEND row (the stats sum the servers').
        var lbtot: Int? = 0
        var description: String { "econ \(econ) wretr \(wretr) wredis \(wredis) stot \(stot) lbtot \(lbtot ?? -1)" }
    }

    /// Server rows then the BACKEND row.
    static func figures(_ h: EngineHarness) -> [Figures] {
        let e = h.engine
        func read(_ index: (CounterField) -> Int, lbtot: Bool) -> Figures {
            Figures(econ: Int(e.total(index(.connectErrors))), wretr: Int(e.total(index(.retries))),
                    wredis: Int(e.total(index(.redispatches))), stot: Int(e.total(index(.sessions))),
                    lbtot: lbtot ? Int(e.total(index(.lbPicks))) : nil)
        }
        return e.spec.backends[0].servers.indices.map { s in read({ e.layout.server(0, s, $0) }, lbtot: true) }
            + [read({ e.layout.backend(0, $0) }, lbtot: false)]
    }

    /// Runs `clients` sessions one after the other, each until the proxy closes it (or the server
    /// greets it), and returns the figures once every session has ended.
    static func run(_ servers: [UInt16], balance: BalanceAlgorithm = .roundrobin, redispatch: Bool = false,
                    clients: Int = 2) throws -> [Figures] {
        let h = try EngineHarness(servers: servers, balance: balance, connectTimeout: 50, retries: 3,
                                  redispatch: redispatch)
        defer { h.stop() }
        for _ in 0..<clients {
            let c = try #require(h.connect())
            c.setTimeout(ms: 5000)
            _ = c.receive()  // EOF once retries are exhausted, or the greeting of a live server
            c.close()
            #expect(EngineHarness.eventually { h.engine.backends[0].sessions.value == 0 })
        }
        return figures(h)
    }

    @Test func oneRefusingServerCountsOneErrorPerSessionAndEveryRetry() throws {
        let expected = [Figures(econ: 2, wretr: 6, wredis: 0, stot: 8, lbtot: 2),
                        Figures(econ: 2, wretr: 6, wredis: 0, stot: 2, lbtot: nil)]
        let plain = try Self.run([closedPort()])
        #expect(plain == expected)
        // With one server, redispatching lands on the same server again: counted as retries.
        let redispatching = try Self.run([closedPort()], redispatch: true)
        #expect(redispatching == expected)
    }

    @Test func twoRefusingServersWithoutRedispatch() throws {
        let got = try Self.run([closedPort(), closedPort()])
        #expect(got == [
            Figures(econ: 1, wretr: 3, wredis: 0, stot: 4, lbtot: 1), Figures(econ: 1, wretr: 3, wredis: 0, stot: 4, lbtot: 1),
            Figures(econ: 2, wretr: 6, wredis: 0, stot: 2, lbtot: nil),
        ])
    }

    /// Every failure moves to the other server at once; the error lands on the server tried last.
    @Test(arguments: [BalanceAlgorithm.roundrobin, .first, .leastconn])
    func twoRefusingServersWithRedispatch(balance: BalanceAlgorithm) throws {
        let got = try Self.run([closedPort(), closedPort()], balance: balance, redispatch: true)
        #expect(got == [
            Figures(econ: 0, wretr: 0, wredis: 4, stot: 4, lbtot: 4), Figures(econ: 2, wretr: 0, wredis: 2, stot: 4, lbtot: 4),
            Figures(econ: 2, wretr: 0, wredis: 6, stot: 2, lbtot: nil),
        ])
    }

    /// `balance source` never redispatches at once: every attempt goes to the hashed server.
    @Test func sourceRetriesTheHashedServer() throws {
        let got = try Self.run([closedPort(), closedPort()], balance: .source, redispatch: true)
        let hashed = Figures(econ: 2, wretr: 6, wredis: 0, stot: 8, lbtot: 2)
        let backend = Figures(econ: 2, wretr: 6, wredis: 0, stot: 2, lbtot: nil)
        #expect(got == [hashed, Figures(), backend] || got == [Figures(), hashed, backend], "\(got)")
    }

    @Test func aRedispatchedSessionThatConnectsIsNoError() throws {
        let live = QueueTests.greeter("ok")
        defer { live.stop() }
        let got = try Self.run([closedPort(), live.port], redispatch: true)
        #expect(got == [
            Figures(econ: 0, wretr: 0, wredis: 2, stot: 2, lbtot: 2), Figures(econ: 0, wretr: 0, wredis: 0, stot: 2, lbtot: 2),
            Figures(econ: 0, wretr: 0, wredis: 2, stot: 2, lbtot: nil),
        ])
    }

    /// No server usable: HAProxy closes the client at once and counts an error on the backend.
    @Test func noServerCountsAnErrorOnTheBackend() throws {
        let h = try EngineHarness(servers: [closedPort()])
        defer { h.stop() }
        h.engine.publish(RoutingTable(generation: 1, spec: h.engine.spec,
                                      states: [[ServerRuntimeState(running: false, weight: 1)]]))
        for _ in 0..<2 {
            let c = try #require(h.connect())
            c.setTimeout(ms: 3000)
            #expect(c.receive() == [])
            c.close()
        }
        #expect(EngineHarness.eventually { h.engine.backends[0].sessions.value == 0 })
        #expect(Self.figures(h) == [Figures(), Figures(econ: 2, wretr: 0, wredis: 0, stot: 2, lbtot: nil)])
    }

    /// A queue timeout is a connection error of the backend (the session waited for any server).
    @Test func queueTimeoutCountsAnErrorOnTheBackend() throws {
        let live = QueueTests.greeter("ok")
        defer { live.stop() }
        let h = try EngineHarness(servers: [live.port], maxconn: [1], queueTimeout: 100)
        defer { h.stop() }
        let held = try #require(h.connect())
        #expect(QueueTests.greeting(held, within: 3000) == "ok")
        let waiting = try #require(h.connect())
        waiting.setTimeout(ms: 3000)
        #expect(waiting.receive() == [])
        waiting.close()
        held.close()
        #expect(EngineHarness.eventually { h.engine.backends[0].sessions.value == 0 })
        #expect(Self.figures(h) == [Figures(econ: 0, wretr: 0, wredis: 0, stot: 1, lbtot: 1),
                                    Figures(econ: 1, wretr: 0, wredis: 0, stot: 2, lbtot: nil)])
    }
}
