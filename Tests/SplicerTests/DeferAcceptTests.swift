import Glibc
import Splicer
import Synchronization
import Testing

/// `bind ... defer-accept` (TCP_DEFER_ACCEPT): a client that has connected but said nothing is not
/// accepted, so no server connection is made for it, until its first bytes arrive.
@Suite(.serialized) struct DeferAcceptTests {
    final class Count: Sendable {
        let value = Atomic<Int>(0)
        var now: Int { value.load(ordering: .relaxed) }
    }

    /// Counts the connections the backend accepted, and echoes.
    static func countingEcho(_ accepted: Count) -> TestServer {
        TestServer { s in
            accepted.value.add(1, ordering: .relaxed)
            while let chunk = s.receive(), !chunk.isEmpty { if !s.send(chunk) { break } }
            s.close()
        }
    }

    @Test func aSilentClientGetsNoServerConnectionUntilItSpeaks() throws {
        let accepted = Count()
        let server = Self.countingEcho(accepted)
        let h = try EngineHarness(servers: [server.port], workers: 1, deferAccept: true)
        defer { h.stop(); server.stop() }
        let c = try #require(h.connect())
        // Something that must NOT happen: give it time (the kernel would release the connection
        // only after ~1 s, with its SYN-ACK retransmit).
        usleep(300_000)
        #expect(accepted.now == 0)
        #expect(c.send("ping"))
        #expect(c.receive(exactly: 4) == Array("ping".utf8))
        #expect(accepted.now == 1)
        c.close()
    }

    /// The control: without it the proxy dials the server as soon as the client connects.
    @Test func withoutItTheServerIsDialledAtOnce() throws {
        let accepted = Count()
        let server = Self.countingEcho(accepted)
        let h = try EngineHarness(servers: [server.port], workers: 1)
        defer { h.stop(); server.stop() }
        let c = try #require(h.connect())
        #expect(EngineHarness.eventually { accepted.now == 1 })
        c.close()
    }
}
