import Glibc
import Splicer
import Synchronization
import Testing

/// End-to-end relay behaviour over loopback: real sockets, real splice.
@Suite(.serialized) struct RelayTests {
    @Test func sixtyFourMebibytesEachWayArriveIntact() throws {
        let echo = TestServer.echo()
        let h = try EngineHarness(servers: [echo.port])
        defer { h.stop(); echo.stop() }
        let c = try #require(h.connect())
        // 8 MiB under a sanitizer (scripts/test sets GPROXY_SANITIZER): the instrumented SHA-256 alone
        // would take minutes for 64 MiB; the relay paths exercised are the same.
        let total = getenv("GPROXY_SANITIZER") == nil ? 64 << 20 : 8 << 20
        let r = EchoRoundTrip.run(c, total: total, seed: 42)
        #expect(r.received == total)
        #expect(r.digestsMatch)
    }

    /// Both relay paths: per-flow choice (small messages copied, bulk spliced) and forced splice
    /// (`option splice-request` + `option splice-response`).
    @Test(arguments: [false, true])
    func twoHundredConcurrentSessionsWithRandomChunks(alwaysSplice: Bool) throws {
        let echo = TestServer.echo()
        let h = try EngineHarness(servers: [echo.port], alwaysSplice: alwaysSplice)
        defer { h.stop(); echo.stop() }
        let failures = Atomic<Int>(0)
        let reasons = Locked<[String]>([])
        var threads: [pthread_t] = []
        for i in 0..<200 {
            threads.append(NamedThread.start(name: "test-c") {
                var stream = ByteStream(seed: UInt64(i + 7))
                guard let c = h.connect() else {
                    failures.add(1, ordering: .relaxed)
                    reasons.withLock { $0.append("session \(i): connect failed") }
                    return
                }
                var sizes = ByteStream(seed: UInt64(1000 + i))
                var sent: [UInt8] = []
                for _ in 0..<8 {
                    let n = 1 + Int(sizes.next(2).withUnsafeBytes { $0.load(as: UInt16.self) }) % 20_000
                    let chunk = stream.next(n)
                    sent += chunk
                    _ = c.send(chunk)
                }
                c.shutdownWrite()
                let (got, eof) = c.receiveAll()
                if !eof || got != sent {
                    failures.add(1, ordering: .relaxed)
                    let firstDiff = (0..<min(got.count, sent.count)).first { got[$0] != sent[$0] } ?? min(got.count, sent.count)
                    reasons.withLock { $0.append("session \(i): eof \(eof), got \(got.count) of \(sent.count), first difference at \(firstDiff)") }
                }
                c.close()
            })
        }
        for t in threads { NamedThread.join(t) }
        #expect(failures.load(ordering: .relaxed) == 0, "\(reasons.withLock { $0 })")
    }

    @Test func aSlowReaderGetsEveryByteOfManySmallWrites() throws {
        // The server reads nothing for a while: the proxy's sends hit EAGAIN mid-message, and what
        // the socket did not take must go out later, in order, exactly once.
        let server = TestServer(receiveBuffer: 2048) { s in
            usleep(1_500_000)
            while let chunk = s.receive(max: 777), !chunk.isEmpty { if !s.send(chunk) { break } }
            s.close()
        }
        let h = try EngineHarness(servers: [server.port], workers: 1)
        defer { h.stop(); server.stop() }
        let c = try #require(h.connect())
        // More than the proxy's largest send buffer (tcp_wmem max, 4 MiB) in small paced messages.
        let total = 6 << 20
        let writer = NamedThread.start(name: "test-writer") {
            var stream = ByteStream(seed: 9)
            var sent = 0
            var sizes = ByteStream(seed: 10)
            // Small paced messages, each relayed by copy, until the proxy's send buffer is full.
            while sent < total {
                let n = min(total - sent, 1 + Int(sizes.next(1)[0]) * 8)
                if !c.send(stream.next(n)) { break }
                sent += n
                usleep(20)
            }
            c.shutdownWrite()
        }
        var expected = ByteStream(seed: 9)
        var received = 0
        var mismatches = 0
        while let chunk = c.receive(max: 65536), !chunk.isEmpty {
            if chunk != expected.next(chunk.count) { mismatches += 1 }
            received += chunk.count
        }
        NamedThread.join(writer)
        c.close()
        #expect(received == total)
        #expect(mismatches == 0)
    }

    @Test func halfCloseStillDeliversTheReply() throws {
        // The server answers only after the client's FIN, so the reply crosses a half-closed session.
        let server = TestServer { s in
            var request: [UInt8] = []
            while let chunk = s.receive(), !chunk.isEmpty { request += chunk }
            usleep(200_000)
            _ = s.send(Array("reply to \(request.count) bytes".utf8))
            s.close()
        }
        let h = try EngineHarness(servers: [server.port])
        defer { h.stop(); server.stop() }
        let c = try #require(h.connect())
        #expect(c.send("hello"))
        c.shutdownWrite()
        let (got, eof) = c.receiveAll()
        #expect(eof)
        #expect(String(decoding: got, as: UTF8.self) == "reply to 5 bytes")
        c.close()
    }

    @Test func serverFinFirstThenClientDataStillArrivesAndEndsInAFin() throws {
        // The server replies and half-closes first; the client, after reading that EOF, sends one
        // more message and its FIN. The relay ends the session on that last FIN by close() alone
        // (no shutdown call): the server must still get the message and then an orderly EOF, not
        // a reset (close() with unread bytes would send one).
        let seen = Mutex<(bytes: [UInt8], eof: Bool)?>(nil)
        let server = TestServer { s in
            _ = s.receive()
            _ = s.send(Array("reply".utf8))
            s.shutdownWrite()
            let rest = s.receiveAll()
            seen.withLock { $0 = rest }
            s.close()
        }
        let h = try EngineHarness(servers: [server.port])
        defer { h.stop(); server.stop() }
        let c = try #require(h.connect())
        #expect(c.send("hello"))
        let (reply, eof) = c.receiveAll()
        #expect(eof)
        #expect(String(decoding: reply, as: UTF8.self) == "reply")
        #expect(c.send("bye"))
        c.shutdownWrite()
        #expect(EngineHarness.eventually(5000) { seen.withLock { $0 != nil } })
        let rest = try #require(seen.withLock { $0 })
        #expect(rest.eof)
        #expect(String(decoding: rest.bytes, as: UTF8.self) == "bye")
        c.close()
    }

    @Test func backendResetClosesOnlyItsSession() throws {
        let echo = TestServer.echo()
        let resetter = TestServer { s in
            _ = s.receive()
            s.resetClose()
        }
        // Round-robin: the first session lands on the resetting server, the second on the echo
        // (one worker, so the accept order is the connect order).
        let h = try EngineHarness(servers: [resetter.port, echo.port], workers: 1)
        defer { h.stop(); echo.stop(); resetter.stop() }
        let victim = try #require(h.connect())
        let survivor = try #require(h.connect())
        #expect(survivor.send("ping"))
        #expect(survivor.receive(exactly: 4) == Array("ping".utf8))
        #expect(victim.send("boom"))
        let started = Clock.nowMs()
        _ = victim.receiveAll()
        // Ended by the proxy (FIN or RST), not by the 10 s receive timeout.
        #expect(Clock.nowMs() - started < 5000)
        #expect(survivor.send("still here"))
        #expect(survivor.receive(exactly: 10) == Array("still here".utf8))
        survivor.close()
        victim.close()
    }

    @Test func refusedBackendClosesTheClientAfterRetries() throws {
        let records = Locked<[SessionRecord]>([])
        let h = try EngineHarness(servers: [closedPort()], connectTimeout: 100, retries: 2,
                                  logger: { r in records.withLock { $0.append(r) } })
        defer { h.stop() }
        let c = try #require(h.connect())
        let started = Clock.nowMs()
        let (got, eof) = c.receiveAll()
        #expect(got.isEmpty)
        #expect(eof)
        // Two retries paused min(timeout connect, 1 s) = 100 ms each.
        #expect(Clock.nowMs() - started >= 150)
        c.close()
        #expect(EngineHarness.eventually { records.withLock { $0.count } == 1 })
        let r = try #require(records.withLock { $0.first })
        #expect(r.termination == "SC")
        #expect(r.retries == 2)
    }

    @Test func redispatchMovesToAnotherServerAtOnce() throws {
        let echo = TestServer.echo()
        let records = Locked<[SessionRecord]>([])
        let h = try EngineHarness(servers: [closedPort(), echo.port], retries: 3, redispatch: true,
                                  logger: { r in records.withLock { $0.append(r) } })
        defer { h.stop(); echo.stop() }
        let c = try #require(h.connect())
        #expect(c.send("abc"))
        #expect(c.receive(exactly: 3) == Array("abc".utf8))
        c.shutdownWrite()
        _ = c.receiveAll()
        c.close()
        #expect(EngineHarness.eventually { records.withLock { $0.count } == 1 })
        let r = try #require(records.withLock { $0.first })
        #expect(r.redispatched)
        #expect(r.server == 1)
        #expect(r.termination == "--")
    }

    @Test func finTimeoutClosesAHalfClosedSessionTheServerNeverFinishes() throws {
        // The server reads to EOF, then holds its side open for 5 s without a word.
        let server = TestServer { s in
            while let chunk = s.receive(), !chunk.isEmpty {}
            usleep(5_000_000)
            s.close()
        }
        let records = Locked<[SessionRecord]>([])
        let h = try EngineHarness(servers: [server.port], clientTimeout: 60_000, clientFinTimeout: 300,
                                  serverTimeout: 60_000, logger: { r in records.withLock { $0.append(r) } })
        defer { h.stop(); server.stop() }
        let c = try #require(h.connect())
        #expect(c.send("last words"))
        c.shutdownWrite()
        let started = Clock.nowMs()
        let (_, eof) = c.receiveAll()
        #expect(eof)
        // Closed by the proxy's `timeout client-fin`, long before the server would have.
        #expect(Clock.nowMs() - started < 4000)
        c.close()
        #expect(EngineHarness.eventually { records.withLock { $0.count } == 1 })
        #expect(records.withLock { $0.first?.bytesToServer } == 10)
    }

    @Test func clientTimeoutClosesAnIdleSession() throws {
        let echo = TestServer.echo()
        let records = Locked<[SessionRecord]>([])
        let h = try EngineHarness(servers: [echo.port], clientTimeout: 300, serverTimeout: 5000,
                                  logger: { r in records.withLock { $0.append(r) } })
        defer { h.stop(); echo.stop() }
        let c = try #require(h.connect())
        #expect(c.send("x"))
        #expect(c.receive(exactly: 1) == [UInt8(ascii: "x")])
        let (_, eof) = c.receiveAll()
        #expect(eof)
        c.close()
        #expect(EngineHarness.eventually { records.withLock { $0.count } == 1 })
        #expect(records.withLock { $0.first?.termination } == "cD")
    }
}
