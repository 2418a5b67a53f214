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
}
