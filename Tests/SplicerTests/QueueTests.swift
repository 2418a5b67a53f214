import Glibc
import Splicer
import Synchronization
import Testing

/// maxconn, queues and balancing across workers (haproxy-semantics.md §5-6).
@Suite(.serialized) struct QueueTests {
    /// A server that greets each connection with its own name, then echoes until the client leaves.
    static func greeter(_ name: String) -> TestServer {
        TestServer { s in
            _ = s.send(Array("\(name)\n".utf8))
            while let chunk = s.receive(), !chunk.isEmpty { if !s.send(chunk) { break } }
            s.close()
        }
    }

    /// Reads the greeting line, or nil if none arrives within `ms` (the session is still queued).
    static func greeting(_ c: BlockingSocket, within ms: Int) -> String? {
        c.setTimeout(ms: ms)
        var out: [UInt8] = []
        while !out.contains(10) {
            guard let chunk = c.receive(max: 1), !chunk.isEmpty else { return nil }
            out += chunk
        }
        return String(decoding: out.dropLast(), as: UTF8.self)
    }

    @Test func oneHundredServedFiftyQueuedAndServedInArrivalOrder() throws {
        let server = Self.greeter("s1")
        let h = try EngineHarness(servers: [server.port], maxconn: [100])
        defer { h.stop(); server.stop() }
        var connected: [BlockingSocket] = []
        for _ in 0..<100 {
            let c = try #require(h.connect())
            #expect(Self.greeting(c, within: 3000) == "s1")
            connected.append(c)
        }
        let backend = h.engine.backends[0]
        var queued: [BlockingSocket] = []
        for i in 0..<50 {
            queued.append(try #require(h.connect()))
            // One at a time, so the arrival order is well defined.
            #expect(EngineHarness.eventually { backend.queuedInBackend == i + 1 })
        }
        #expect(backend.serverSessions[0].value == 100)
        #expect(backend.queuedInBackend == 50)
        #expect(Self.greeting(queued[0], within: 200) == nil)
        // Free one slot at a time: exactly the oldest waiting session gets it.
        for i in 0..<10 {
            connected[i].close()
            #expect(Self.greeting(queued[i], within: 3000) == "s1")
            #expect(backend.queuedInBackend == 50 - i - 1)
            if i + 1 < 50 { #expect(Self.greeting(queued[i + 1], within: 50) == nil) }
        }
        // Then the other forty at once: all of the remaining queue drains.
        for i in 10..<50 { connected[i].close() }
        for i in 10..<50 { #expect(Self.greeting(queued[i], within: 3000) == "s1") }
        #expect(backend.queuedInBackend == 0)
        #expect(backend.serverSessions[0].value == 100)
        #expect(backend.backendQueueHigh.value == 50)
        for c in connected[50...] + queued { c.close() }
        #expect(EngineHarness.eventually { backend.serverSessions[0].value == 0 })
    }

    @Test func queueTimeoutClosesOnlyTheWaitingClients() throws {
        let server = Self.greeter("s1")
        let h = try EngineHarness(servers: [server.port], maxconn: [2], queueTimeout: 300)
        defer { h.stop(); server.stop() }
        let a = try #require(h.connect()), b = try #require(h.connect())
        #expect(Self.greeting(a, within: 3000) == "s1")
        #expect(Self.greeting(b, within: 3000) == "s1")
        let waiting = try #require(h.connect())
        let started = Clock.nowMs()
        waiting.setTimeout(ms: 3000)
        #expect(waiting.receive() == [])  // FIN, no data, after `timeout queue`
        #expect(Clock.nowMs() - started >= 250)
        // The served sessions are untouched.
        #expect(a.send("still"))
        a.setTimeout(ms: 3000)
        #expect(a.receive(exactly: 5) == Array("still".utf8))
        for c in [a, b, waiting] { c.close() }
    }

    @Test func aBoundSessionOverflowingMaxqueueWaitsInTheBackendQueue() throws {
        let server = Self.greeter("s1")
        // `balance source` binds each client to a server: it waits in that server's own queue,
        // until `maxqueue` is reached; the overflow goes to the backend queue (HAProxy's behaviour).
        let h = try EngineHarness(servers: [server.port], balance: .source, maxconn: [1], maxqueue: [1])
        defer { h.stop(); server.stop() }
        let a = try #require(h.connect())
        #expect(Self.greeting(a, within: 3000) == "s1")
        let b = try #require(h.connect())
        let backend = h.engine.backends[0]
        #expect(EngineHarness.eventually { backend.queued(onServer: 0) == 1 })
        let c = try #require(h.connect())
        #expect(EngineHarness.eventually { backend.queuedInBackend == 1 })
        a.close()
        #expect(Self.greeting(b, within: 3000) == "s1")
        b.close()
        #expect(Self.greeting(c, within: 3000) == "s1")
        c.close()
    }

    @Test func globalMaxconnLeavesTheRestInTheKernelBacklog() throws {
        let server = Self.greeter("s1")
        let records = Locked<[SessionRecord]>([])
        let h = try EngineHarness(servers: [server.port], globalMaxconn: 3,
                                  logger: { r in records.withLock { $0.append(r) } })
        defer { h.stop(); server.stop() }
        var served: [BlockingSocket] = []
        for _ in 0..<3 {
            let c = try #require(h.connect())
            #expect(Self.greeting(c, within: 3000) == "s1")
            served.append(c)
        }
        // The 4th completes its handshake (kernel backlog) but is not accepted yet.
        let fourth = try #require(h.connect())
        #expect(Self.greeting(fourth, within: 300) == nil)
        #expect(h.engine.processSessions.value == 3)
        served[0].close()
        // The close travels client → proxy → server → proxy before the slot frees. The earlier misses
        // here were lost wake-ups between workers (AcceptWakeupTests provokes each one on purpose);
        // the bound stays generous for loaded machines.
        #expect(Self.greeting(fourth, within: 10_000) == "s1",
                "sessions: \(records.withLock { $0.map { "\($0.termination) r\($0.retries) \($0.processSessions)" } })")
        for c in served[1...] + [fourth] { c.close() }
    }

    @Test func frontendMaxconnIsExactAcrossWorkers() throws {
        let server = Self.greeter("s1")
        let h = try EngineHarness(servers: [server.port], workers: 2, frontendMaxconn: 4)
        defer { h.stop(); server.stop() }
        let clients = (0..<6).compactMap { _ in h.connect() }
        let greeted = clients.filter { Self.greeting($0, within: 500) != nil }
        #expect(greeted.count == 4)
        #expect(h.engine.frontendSessions[0].max == 4)
        for c in clients { c.close() }
    }

    static func order(_ h: EngineHarness, _ n: Int) throws -> [String] {
        try (0..<n).map { _ in
            let c = try #require(h.connect())
            defer { c.close() }
            return Self.greeting(c, within: 3000) ?? "?"
        }
    }

    @Test func roundRobinHonoursWeights() throws {
        let servers = (1...3).map { Self.greeter("s\($0)") }
        defer { servers.forEach { $0.stop() } }
        let h = try EngineHarness(servers: servers.map(\.port), weights: [3, 1, 2])
        defer { h.stop() }
        let picks = try Self.order(h, 12)
        #expect(picks.filter { $0 == "s1" }.count == 6)
        #expect(picks.filter { $0 == "s2" }.count == 2)
        #expect(picks.filter { $0 == "s3" }.count == 4)
        #expect(Array(picks[0..<6]) == Array(picks[6..<12]))
    }

    @Test func leastconnPrefersTheEmptiestServer() throws {
        let servers = (1...3).map { Self.greeter("s\($0)") }
        defer { servers.forEach { $0.stop() } }
        let h = try EngineHarness(servers: servers.map(\.port), balance: .leastconn)
        defer { h.stop() }
        // Hold sessions: the first three spread over the three servers.
        var held: [(BlockingSocket, String)] = []
        for _ in 0..<3 {
            let c = try #require(h.connect())
            held.append((c, Self.greeting(c, within: 3000) ?? "?"))
        }
        #expect(Set(held.map(\.1)) == ["s1", "s2", "s3"])
        // Free the one on s2: the next session must go there.
        let onS2 = try #require(held.firstIndex { $0.1 == "s2" })
        held[onS2].0.close()
        #expect(EngineHarness.eventually { h.engine.backends[0].serverSessions[1].value == 0 })
        let next = try #require(h.connect())
        #expect(Self.greeting(next, within: 3000) == "s2")
        next.close()
        for (c, _) in held { c.close() }
    }

    @Test func firstFillsServersInOrder() throws {
        let servers = (1...2).map { Self.greeter("s\($0)") }
        defer { servers.forEach { $0.stop() } }
        let h = try EngineHarness(servers: servers.map(\.port), balance: .first, maxconn: [2, 2])
        defer { h.stop() }
        var got: [String] = []
        var held: [BlockingSocket] = []
        for _ in 0..<4 {
            let c = try #require(h.connect())
            got.append(Self.greeting(c, within: 3000) ?? "?")
            held.append(c)
        }
        #expect(got == ["s1", "s1", "s2", "s2"])
        held.forEach { $0.close() }
    }

    @Test func sourceSticksOneClientAddressToOneServer() throws {
        let servers = (1...3).map { Self.greeter("s\($0)") }
        defer { servers.forEach { $0.stop() } }
        let h = try EngineHarness(servers: servers.map(\.port), balance: .source)
        defer { h.stop() }
        let picks = try Self.order(h, 6)
        #expect(Set(picks).count == 1)
    }

    /// `balance source` keeps a client on its server while others queue: a newcomer waits in that
    /// server's queue behind the earlier ones instead of taking whichever server has room (HAProxy
    /// queues a hashed stream on its server). 127.0.0.1 hashes to s2 of two equal-weight servers.
    @Test func sourceNewcomersQueueOnTheirOwnServerBehindOthers() throws {
        let servers = (1...2).map { Self.greeter("s\($0)") }
        defer { servers.forEach { $0.stop() } }
        let h = try EngineHarness(servers: servers.map(\.port), balance: .source, maxconn: [1, 1])
        defer { h.stop() }
        let backend = h.engine.backends[0]
        let a = try #require(h.connect())
        try #require(Self.greeting(a, within: 3000) == "s2")
        let b = try #require(h.connect())
        #expect(EngineHarness.eventually { backend.queued(onServer: 1) == 1 })
        let c = try #require(h.connect())
        #expect(Self.greeting(c, within: 300) == nil, "the newcomer left its server while s2 was busy")
        #expect(backend.queued(onServer: 1) == 2)
        a.close()
        #expect(Self.greeting(b, within: 3000) == "s2")
        b.close()
        #expect(Self.greeting(c, within: 3000) == "s2")
        c.close()
    }
}
