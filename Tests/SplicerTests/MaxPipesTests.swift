import CEpoll
import Glibc
import Synchronization
import Testing
@testable import Splicer

/// `maxpipes`: when every pipe the process may have is in use, a bulk flow is copied through the
/// worker's buffer instead of spliced (HAProxy falls back to recv/send), and no byte is lost.
@Suite struct MaxPipesTests {
    @Test(arguments: [false, true])
    func flowsBeyondMaxpipesAreCopiedAndArriveIntact(alwaysSplice: Bool) throws {
        // The hog is reset below while the proxy still splices towards it: as gproxy does, take EPIPE
        // rather than SIGPIPE.
        _ = cepoll_ignore_sigpipe()
        let echo = TestServer.echo()
        let h = try EngineHarness(servers: [echo.port], workers: 1, alwaysSplice: alwaysSplice, maxPipes: 1)
        defer { h.stop(); echo.stop() }
        #expect(h.engine.spec.pipes.limit == 1)
        // A client that sends and never reads: the echoed bytes back up into the proxy, which parks
        // them in a pipe and holds it. Every pipe the process may have is then in use.
        let hog = try #require(h.connect())
        let hogWriter = NamedThread.start(name: "hog") {
            var stream = ByteStream(seed: 99)
            for _ in 0..<32 where hog.send(stream.next(256 * 1024)) {}
        }
        #expect(EngineHarness.eventually(10_000) { h.engine.spec.pipes.used >= 1 })
        let flows = 3
        // 128 KiB under a sanitizer (GPROXY_SANITIZER): at 1 MiB the TSan run took 68 s and its
        // reads hit the 10 s receive timeout on the loaded CI box.
        let total = getenv("GPROXY_SANITIZER") == nil ? 1 << 20 : 128 << 10
        let results = Locked<[Bool]>([])
        let receivedBytes = Locked<[Int]>([])
        let threads = (0..<flows).map { n in
            NamedThread.start(name: "flow-\(n)") {
                guard let c = h.connect() else {
                    results.withLock { $0.append(false) }
                    return
                }
                let r = EchoRoundTrip.run(c, total: total, seed: UInt64(n + 1))
                let received = r.received
                let intact = received == total && r.digestsMatch
                results.withLock { $0.append(intact) }
                receivedBytes.withLock { $0.append(received) }
            }
        }
        for t in threads { NamedThread.join(t) }
        #expect(results.withLock { $0 } == Array(repeating: true, count: flows),
                "received \(receivedBytes.withLock { $0 }) of \(total) bytes each")
        hog.resetClose()
        NamedThread.join(hogWriter)
        #expect(EngineHarness.eventually { h.engine.spec.pipes.used == 0 })
    }
}
