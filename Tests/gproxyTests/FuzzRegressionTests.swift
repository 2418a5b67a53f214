import Foundation
import Testing
@testable import gproxy

/// Every input under Fuzz/regressions/<target>/ is one that made a fuzz target (Fuzz/*.swift,
/// `scripts/fuzz`) crash or fail an invariant. Each is fed again to the same parser, which must
/// return cleanly with the property the fuzz target checks.
@Suite struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/regressions")

    /// (target, file name, bytes) for every regression input.
    static func inputs(_ target: String) -> [(name: String, bytes: [UInt8])] {
        let dir = root.appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().compactMap { name in
            (try? Data(contentsOf: dir.appendingPathComponent(name))).map { (name, Array($0)) }
        }
    }

    @Test func everyRegressionFolderIsATarget() throws {
        let targets = try FileManager.default.contentsOfDirectory(atPath: Self.root.path)
        let known: Set = ["config", "stats-http", "admin-form", "runtime-command", "patroni", "state-file", "check-response"]
        #expect(Set(targets).isSubset(of: known), "\(targets)")
        #expect(!targets.isEmpty)
    }

    @Test func checkResponse() {
        let expects: [[HTTPCheckExpect]] = [[], [HTTPCheckExpect(matcher: .status([200...200]))],
                                            [HTTPCheckExpect(matcher: .rstatus("^2"))]]
        for (name, bytes) in Self.inputs("check-response") {
            if let (line, _) = HTTPCheckEvaluator.parse(bytes) {
                #expect((0...999).contains(line.code), "\(name): status code \(line.code) is not 3 digits")
            }
            for e in expects {
                let final = HTTPCheckEvaluator.evaluate(bytes, expects: e, complete: true, durationMs: 1)
                #expect(final != nil, "\(name): no verdict")
                if let early = HTTPCheckEvaluator.evaluate(bytes, expects: e, complete: false, durationMs: 1) {
                    #expect(early == final, "\(name)")
                }
            }
        }
    }

    @Test func config() {
        for (name, bytes) in Self.inputs("config") {
            let first = Result { () throws(ConfigErrors) in try ConfigLoader.parse(files: [("fuzz.cfg", bytes)], resolver: HostResolver { _ in "192.0.2.1" }) }
            let again = Result { () throws(ConfigErrors) in try ConfigLoader.parse(files: [("fuzz.cfg", bytes)], resolver: HostResolver { _ in "192.0.2.1" }) }
            switch (first, again) {
            case (.success(let a), .success(let b)): #expect(a == b, "\(name)")
            case (.failure(let a), .failure(let b)):
                #expect(a.errors == b.errors, "\(name)")
                #expect(a.errors.allSatisfy { $0.file == "fuzz.cfg" && !$0.message.isEmpty }, "\(name)")
            default: Issue.record("\(name): two parses disagree")
            }
        }
    }

    /// A port past Int.max wrapped around in atol(): negative (UInt16() trapped) or, wrapped
    /// exactly, a valid port silently accepted; C's atol() saturates, so HAProxy says "invalid port".
    @Test func overflowingNumbersSaturate() {
        #expect(ConfigValues.atol("18446744073709551617") == Int.max)
        #expect(ConfigValues.atol("-9223372036854775809") == Int.min)
        #expect(ConfigValues.atol("-9223372036854775808") == Int.min)
        #expect(ConfigValues.atol("  -42x") == -42)
        #expect(throws: ConfigErrors.self) {
            try ConfigLoader.parse(text: "backend b\n    server s 127.0.0.1:18446744073709551617\n")
        }
    }

    @Test func statsHTTP() {
        let config = StatsConfig(enabled: true, uri: "/", auth: [StatsCredential(user: "a", password: "b")], admin: true)
        for (name, bytes) in Self.inputs("stats-http") {
            let reply = StatsHTTPHandler.handle(bytes, config: config, admin: nil) {
                StatsSnapshot(pid: 1, version: "t", nodeName: "t", uptimeSeconds: 0, proxies: [])
            }
            if let reply {
                #expect(reply.starts(with: Array("HTTP/1.1 ".utf8)), "\(name)")
            } else {
                #expect(bytes.count <= StatsHTTPHandler.maxRequestBytes, "\(name): no reply to a full buffer")
            }
        }
    }

    @Test func adminForm() {
        for (name, bytes) in Self.inputs("admin-form") {
            if let form = StatsAdminForm.parse(bytes[...]) {
                #expect(form.servers.count <= bytes.count, "\(name)")
            }
        }
    }

    @Test func runtimeCommand() {
        for (name, bytes) in Self.inputs("runtime-command") {
            let line = String(decoding: bytes, as: UTF8.self)
            let commands = RuntimeCommand.parseLine(line)
            #expect(commands.count <= bytes.filter { $0 == UInt8(ascii: ";") }.count + 1, "\(name)")
        }
    }

    /// Commands split at the byte `;`, as HAProxy does: a prepend mark (U+0602) or a CR LF pair
    /// made one Swift Character with its neighbour and hid the separator.
    @Test func runtimeSeparatorsAreScalars() {
        #expect(RuntimeCommand.parseLine("x\u{602};show info") == [.unknown("x\u{602}"), .showInfo])
        #expect(RuntimeCommand.parseLine("show\r\ninfo") == [.showInfo])
    }

    @Test func patroni() {
        for (name, bytes) in Self.inputs("patroni") {
            #expect(PatroniAnswer.parse(bytes) == PatroniAnswer.parse(bytes), "\(name)")
            #expect(ClusterMember.parse(bytes) == ClusterMember.parse(bytes), "\(name)")
        }
    }

    @Test func stateFile() {
        for (name, bytes) in Self.inputs("state-file") {
            let file = ServerStateFile.parse(String(decoding: bytes, as: UTF8.self))
            #expect(file.entries.allSatisfy { (0...3).contains($0.opState) }, "\(name)")
        }
    }
}
