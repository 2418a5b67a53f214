import Foundation
import Glibc
import Splicer
import Testing
@testable import gproxy

/// The relay never waits for the health checker: a checker stuck in a long turn (a slow DNS answer
/// during discovery, a burst of results) must not delay a single session.
@Suite(.serialized) struct CheckerIsolationTests {
    /// Finding: session log lines named discovered servers by reading the checker's state under the
    /// checker's lock, on the worker thread; a checker holding it stalled every session's end.
    @Test func sessionsFlowWhileTheCheckerIsStalled() throws {
        let cluster = try SimulatedCluster(memberCount: 3)
        defer { cluster.stop() }
        let pg1 = cluster.members[0]
        let ro = RuntimeHarness.freePort()
        let sink = LoggingTests.SyslogCollector()
        // Only pg1 is configured: the replicas pg2/pg3 are discovered, so log lines need live names.
        let h = try RuntimeHarness("""
            listen ro
                bind 127.0.0.1:\(ro)
                log 127.0.0.1:\(sink.port) local0
                option tcplog
                patroni replica fast-inter 100ms discover max-members 4
                option httpchk OPTIONS /replica
                default-server inter 200ms fall 3 rise 2
                server pg1 127.0.0.1:\(pg1.dbPort) check port \(pg1.apiPort)

            """, workers: 1)
        defer { h.stop() }
        #expect(RuntimeHarness.eventually { h.server("ro", "pg2")?.status == "UP" && h.server("ro", "pg3")?.status == "UP" })
        #expect(RuntimeHarness.nodeBehind(port: ro) != nil)
        let served = CheckerStall.whileStalled(h.runtime, seconds: 3) {
            (0..<4).map { _ in RuntimeHarness.nodeBehind(port: ro) != nil }
        }
        #expect(served == [true, true, true, true], "sessions waited for the checker")
        #expect(sink.wait(for: " ro ro/pg") != nil)
    }
}

/// Keeps the checker thread busy (as a long turn would) while `body` runs on this thread.
enum CheckerStall {
    static func whileStalled<T>(_ runtime: ProxyRuntime, seconds: Int, _ body: () -> T) -> T {
        let held = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let checker = runtime.checker
        Thread.detachNewThread {
            checker.perform {
                held.signal()
                _ = release.wait(timeout: .now() + .seconds(seconds))
            }
        }
        held.wait()
        defer { release.signal() }
        return body()
    }
}
