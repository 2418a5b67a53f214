import Foundation
import Glibc
import Synchronization
import Testing
@testable import gproxy

/// Reload with `-sf`: the new process takes the old one's listening sockets, so connections that
/// arrive while the old process lets go are never reset (HAProxy needs `expose-fd listeners` and
/// `-x` for this; with a plain `-sf` it resets what the old sockets had queued).
@Suite(.serialized) struct ReloadHandoverTests {
    @Test func chainOfReloadsNeverResetsAConnection() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let port = RuntimeHarness.freePort()
        let statsPort = RuntimeHarness.freePort()
        let config = CLITests.write("""
            global
                nbthread 2
            listen rw
                bind 127.0.0.1:\(port)
                server pg1 127.0.0.1:\(cluster.members[0].dbPort)
            listen stats
                mode http
                bind 127.0.0.1:\(statsPort)
                stats enable
                stats uri /

            """)
        defer { unlink(config) }
        func launch(replacing old: Process?) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLITests.binary)
            p.arguments = ["-q", "-f", config] + (old.map { ["-sf", "\($0.processIdentifier)"] } ?? [])
            try p.run()
            return p
        }
        var current = try launch(replacing: nil)
        defer { if current.isRunning { kill(current.processIdentifier, SIGTERM) }; current.waitUntilExit() }
        #expect(RuntimeHarness.eventually { RuntimeHarness.nodeBehind(port: port) == "pg1" })

        // Clients connect back to back for the whole test; every one must be served.
        let done = Atomic<Bool>(false)
        let served = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        let hammer = Thread {
            while !done.load(ordering: .relaxed) {
                if RuntimeHarness.nodeBehind(port: port) == "pg1" {
                    served.add(1, ordering: .relaxed)
                } else {
                    failed.add(1, ordering: .relaxed)
                }
            }
        }
        hammer.start()
        for _ in 0..<4 {
            let next = try launch(replacing: current)
            #expect(RuntimeHarness.eventually { !current.isRunning })
            #expect(current.terminationStatus == 0)
            current = next
            // The stats listener came over too: the new process could not have bound it otherwise
            // while the old one held it, and it answers.
            #expect(TestClient.get(port: statsPort, "GET /;csv HTTP/1.0\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        }
        usleep(100_000)
        done.store(true, ordering: .relaxed)
        while !hammer.isFinished { usleep(10_000) }
        #expect(failed.load(ordering: .relaxed) == 0)
        #expect(served.load(ordering: .relaxed) > 20)
        #expect(current.isRunning)
    }
}
