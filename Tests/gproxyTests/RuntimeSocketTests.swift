import Foundation
import Glibc
import Splicer
import Testing
@testable import gproxy

/// The runtime API (`stats socket`) of a running gproxy: what an operator's `socat` sees.
@Suite(.serialized) struct RuntimeSocketTests {
    static func socketPath() -> String { "/tmp/gproxy-rt-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock" }

    static func config(socket: String, port: UInt16, backendPort: UInt16, servers: Int = 1) -> String {
        var t = """
            global
                stats socket \(socket) mode 600 level admin
                nbthread 1
            listen rw
                bind 127.0.0.1:\(port)

            """
        for i in 1...servers { t += "    server pg\(i) 127.0.0.1:\(backendPort)\n" }
        return t
    }

    static func pidFromShowInfo(_ path: String) -> Int32? {
        guard let info = UnixClient.request(path, "show info\n") else { return nil }
        let line = info.split(separator: "\n").first { $0.hasPrefix("Pid: ") }
        return line.flatMap { Int32($0.dropFirst(5)) }
    }

    /// Finding: every `-sf` reload deleted the socket file (the old process unlinked the path the
    /// new one had just bound), so the runtime API was gone until the next restart.
    @Test func reloadKeepsTheRuntimeSocketReachable() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let path = Self.socketPath()
        defer { unlink(path) }
        let text = Self.config(socket: path, port: RuntimeHarness.freePort(), backendPort: cluster.members[0].dbPort)
        let old = try GProxyProcess(config: text)
        defer { old.stop(); unlink(old.configPath) }
        #expect(RuntimeHarness.eventually { Self.pidFromShowInfo(path) == old.pid })
        let new = try GProxyProcess(config: text, replacing: old, configPath: old.configPath)
        defer { new.stop() }
        #expect(RuntimeHarness.eventually(10_000) { !old.isRunning })
        #expect(RuntimeHarness.eventually { Self.pidFromShowInfo(path) == new.pid })
        #expect(access(path, F_OK) == 0)
    }

    /// Finding: with several commands in one write, only the first ran. HAProxy runs each line
    /// (and each `;`-separated command) in non-interactive mode.
    @Test func everyLineOfOneWriteRuns() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let path = Self.socketPath()
        defer { unlink(path) }
        let g = try GProxyProcess(config: Self.config(socket: path, port: RuntimeHarness.freePort(),
                                                      backendPort: cluster.members[0].dbPort))
        defer { g.stop(); unlink(g.configPath) }
        #expect(RuntimeHarness.eventually { Self.pidFromShowInfo(path) == g.pid })
        let reply = UnixClient.request(path, "set server rw/pg1 weight 7\nset server rw/pg1 weight 9\nget weight rw/pg1\n")
        #expect(reply == "\n\n9 (initial 1)\n\n")
        #expect(UnixClient.request(path, "get weight rw/pg1\n") == "9 (initial 1)\n\n")
    }

    /// Finding: a reply was built whole in memory before the first byte went out: one 64 KiB line of
    /// `show stat json;` took a gigabyte. Replies must stream through a bounded buffer per client.
    @Test func aHugeReplyStreamsWithBoundedMemory() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let path = Self.socketPath()
        defer { unlink(path) }
        let g = try GProxyProcess(config: Self.config(socket: path, port: RuntimeHarness.freePort(),
                                                      backendPort: cluster.members[0].dbPort, servers: 5))
        defer { g.stop(); unlink(g.configPath) }
        #expect(RuntimeHarness.eventually { Self.pidFromShowInfo(path) == g.pid })
        guard let one = UnixClient.request(path, "show stat json\n"), one.count > 20_000 else {
            Issue.record("no show stat json reply")
            return
        }
        let before = g.rssKiB
        let command = "show stat json;"
        let count = 3000
        guard let fd = UnixClient.connect(path, timeoutSeconds: 20) else {
            Issue.record("cannot connect")
            return
        }
        defer { close(fd) }
        TestClient.send(fd, String(repeating: command, count: count) + "\n")
        // Read slowly at first: the server must not run ahead of the reader.
        var total = 0
        var replies = 0
        var peakKiB = 0
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var tail: [UInt8] = []
        let marker = Array("]]\n".utf8)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            total += n
            // Count reply ends across chunk boundaries.
            let chunk = tail + buf[0..<n]
            var i = 0
            while i + marker.count <= chunk.count {
                if chunk[i] == marker[0] && chunk[i + 1] == marker[1] && chunk[i + 2] == marker[2] { replies += 1; i += 3 } else { i += 1 }
            }
            tail = Array(chunk.suffix(marker.count - 1))
            if total < 8 << 20 { usleep(2000); peakKiB = max(peakKiB, g.rssKiB) }
        }
        peakKiB = max(peakKiB, g.rssKiB)
        #expect(replies == count, "every command answered")
        #expect(total >= count * (one.utf8.count - 200))
        // The whole reply is hundreds of MB; the process may grow by a few buffers only.
        #expect(peakKiB - before < 64 * 1024, "RSS grew from \(before) KiB to \(peakKiB) KiB for a \(total >> 20) MiB reply")
    }

    /// Finding: `show info` printed pipe figures that nothing ever set (Maxpipes 0 whatever the
    /// config said). They now come from the engine's pipe gauge.
    @Test func showInfoReportsThePipeGauge() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let path = Self.socketPath()
        defer { unlink(path) }
        let text = Self.config(socket: path, port: RuntimeHarness.freePort(), backendPort: cluster.members[0].dbPort)
            .replacingOccurrences(of: "    nbthread 1\n", with: "    nbthread 1\n    maxpipes 7\n")
        let g = try GProxyProcess(config: text)
        defer { g.stop(); unlink(g.configPath) }
        #expect(RuntimeHarness.eventually { Self.pidFromShowInfo(path) == g.pid })
        let info = UnixClient.request(path, "show info\n") ?? ""
        #expect(info.contains("Maxpipes: 7\n"), "\(info)")
        #expect(info.contains("PipesUsed: 0\n"))
        #expect(!info.contains("SplicedBytes"))
    }
}
