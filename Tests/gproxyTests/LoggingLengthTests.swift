import Testing
@testable import gproxy

/// `log ... len N`: every emitted line is cut to N bytes, as HAProxy does (default 1024).
@Suite(.serialized) struct LoggingLengthTests {
    @Test func syslogDatagramsAreCutToLen() throws {
        let collector = LoggingTests.SyslogCollector()
        let target = LogTarget(destination: .udp(host: "127.0.0.1", port: collector.port), facility: "local0",
                               format: "raw", maxLength: 80)
        LogSink(targets: [target]).emit(.info, "start" + String(repeating: "x", count: 200))
        #expect(collector.wait(for: "start") == "start" + String(repeating: "x", count: 75))
    }

    @Test func theDefaultIs1024Bytes() throws {
        let collector = LoggingTests.SyslogCollector()
        let target = LogTarget(destination: .udp(host: "127.0.0.1", port: collector.port), facility: "local0")
        LogSink(targets: [target]).emit(.info, "start" + String(repeating: "y", count: 3000))
        let line = try #require(collector.wait(for: "start"))
        #expect(line.utf8.count == 1024)
        #expect(line.hasPrefix("<134>") && line.hasSuffix("yyy"))
    }

    /// A stream line keeps its LF inside the limit (HAProxy: `len 80` gives 79 bytes and the LF).
    @Test func streamLinesKeepTheirNewlineWithinLen() {
        let short = LogSink.cut("abc", maxLength: 80, newline: true)
        #expect(short == Array("abc\n".utf8))
        let long = LogSink.cut(String(repeating: "z", count: 100), maxLength: 80, newline: true)
        #expect(long == Array((String(repeating: "z", count: 79) + "\n").utf8))
        #expect(LogSink.cut(String(repeating: "z", count: 100), maxLength: 80, newline: false).count == 80)
    }
}
