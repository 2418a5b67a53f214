import Glibc
import Testing
@testable import Splicer

/// Listening sockets closed by SIGTTOU and reopened by SIGTTIN keep the backlog of the first bind.
@Suite(.serialized) struct ListenerBacklogTests {
    /// The backlog limit of each socket listening on `port`, as `ss` reports it (Send-Q of a listener).
    static func backlogs(port: UInt16) -> [Int] {
        guard let f = popen("ss -ltnH 'sport = :\(port)'", "r") else { return [] }
        defer { pclose(f) }
        var out: [Int] = []
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), f) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
            if fields.count >= 3, let q = Int(fields[2]) { out.append(q) }  // State Recv-Q Send-Q …
        }
        return out
    }

    @Test func reopenedListenersKeepTheBacklogOfTheFirstBind() throws {
        let server = QueueTests.greeter("s1")
        // frontend maxconn 2000: a backlog of 2000 (below the usual net.core.somaxconn of 4096).
        let h = try EngineHarness(servers: [server.port], workers: 2, frontendMaxconn: 2000)
        defer { h.stop(); server.stop() }
        #expect(Self.backlogs(port: h.port) == [2000, 2000])
        h.engine.pauseListeners()
        #expect(EngineHarness.eventually { Self.backlogs(port: h.port).isEmpty })
        h.engine.resumeListeners()
        #expect(EngineHarness.eventually { Self.backlogs(port: h.port).count == 2 })
        #expect(Self.backlogs(port: h.port) == [2000, 2000])
        let c = try #require(h.connect())
        #expect(QueueTests.greeting(c, within: 3000) == "s1")
        c.close()
    }
}
