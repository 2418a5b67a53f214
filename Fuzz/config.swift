@testable import gproxy

/// (a) haproxy.cfg tokenizer + parser + validation, from text.
/// Invariants: never traps; tokenizing yields at most 64 words; the same text gives the same result
/// twice; every diagnostic points into the file; validating again gives the same errors; a blank
/// line prepended moves every diagnostic down one line; a comment line appended changes nothing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    let environment = ["HOME": "/root", "PORT": "5432", "EMPTY": ""]

    var lines: [RawConfigLine] = []
    _ = ConfigTokenizer.forEachLine(bytes) { lines.append($0); return true }
    // The checks that cost more parses run on one input in eight.
    let sampled = bytes.count % 8 == 0
    if sampled {
        for raw in lines {
            let context = ExpansionContext(environment: environment, file: "fuzz.cfg", line: raw.number)
            if let words = try? ConfigTokenizer.words(of: raw.bytes, context: context) {
                fuzzCheck(words.count <= ConfigTokenizer.maxWords, "\(words.count) words on line \(raw.number)")
            }
        }
    }

    // ConfigLoader.parse(files:) is exactly this: parse, close the last section, validate.
    var parser = ConfigParser(environment: environment, resolver: fuzzResolver)
    parser.parseFile(bytes, name: "fuzz.cfg")
    parser.closeSection()
    let parsed = parser.errors.count
    parser.validate()
    let validation = Array(parser.errors[parsed...])
    let first = Outcome(config: parser.errors.isEmpty ? parser.config : nil, errors: parser.errors,
                        warnings: parser.errors.isEmpty ? parser.config.warnings : [])
    if sampled { fuzzCheck(outcome(bytes, environment) == first, "ConfigLoader and a second parse disagree") }
    let lastLine = max(lines.last?.number ?? 0, 1)
    for d in first.errors + first.warnings {
        fuzzCheck(d.file == "fuzz.cfg" && (0...lastLine).contains(d.line) && !d.message.isEmpty, "diagnostic \(d)")
    }

    // Validation is a pure function of the parsed sections: running it again gives the same errors.
    parser.errors = []
    parser.validate()
    fuzzCheck(parser.errors == validation, "re-validation: \(validation) then \(parser.errors)")

    // Metamorphic checks: only for text whose meaning cannot depend on its line numbers.
    let plain = sampled && bytes.last == 0x0A && !bytes.contains(0) && !containsExpansion(bytes)
    if plain && first.errors.count < ConfigParser.maxFatalErrors - 1 {
        let shifted = outcome([0x0A] + bytes, environment)
        fuzzCheck(shifted.errors.map(\.line) == first.errors.map { $0.line > 0 ? $0.line + 1 : 0 },
                  "a blank first line moved errors \(first.errors) to \(shifted.errors)")
        fuzzCheck(shifted.warnings.map(\.line) == first.warnings.map { $0.line > 0 ? $0.line + 1 : 0 },
                  "a blank first line moved warnings \(first.warnings) to \(shifted.warnings)")
        let commented = outcome(bytes + Array("# fuzz\n".utf8), environment)
        fuzzCheck(commented == first, "an appended comment line changed the result")
    }
    return 0
}

private struct Outcome: Equatable {
    var config: GProxyConfig?
    var errors: [ConfigDiagnostic]
    var warnings: [ConfigDiagnostic]
}

private func outcome(_ bytes: [UInt8], _ environment: [String: String]) -> Outcome {
    do {
        let config = try ConfigLoader.parse(files: [("fuzz.cfg", bytes)], environment: environment, resolver: fuzzResolver)
        return Outcome(config: config, errors: [], warnings: config.warnings)
    } catch {
        return Outcome(config: nil, errors: error.errors, warnings: [])
    }
}

/// `${` (environment and `${.LINE}`-style pseudo-variables) or a bare `$` expansion.
private func containsExpansion(_ bytes: [UInt8]) -> Bool {
    bytes.contains(UInt8(ascii: "$"))
}

/// Host names resolve to a documentation address without DNS: a fuzzer must not wait on a resolver.
private let fuzzResolver = HostResolver { _ in "192.0.2.1" }
