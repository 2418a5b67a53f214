@testable import gproxy

/// (e) The server-state file (`show servers state` output, read by `load-server-state-from-file`).
/// Invariants: never traps; every line is either an entry, skipped, blank/comment, or the version;
/// skipped line numbers are real lines in order; op state is 0...3; entries written back in
/// HAProxy's layout parse to the same entries with nothing skipped.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStateFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    let text = String(decoding: bytes, as: UTF8.self)
    let file = ServerStateFile.parse(text)
    let lineCount = text.split(separator: "\n", omittingEmptySubsequences: false).count
    fuzzCheck(file.entries.count + file.skippedLines.count <= lineCount, "more results than lines")
    fuzzCheck(file.skippedLines == file.skippedLines.sorted() && Set(file.skippedLines).count == file.skippedLines.count
              && file.skippedLines.allSatisfy { (1...lineCount).contains($0) }, "skipped lines \(file.skippedLines)")
    for e in file.entries {
        fuzzCheck((0...3).contains(e.opState), "op state \(e.opState)")
        fuzzCheck(!e.backend.isEmpty && !e.server.isEmpty && !e.address.isEmpty, "empty field in \(e)")
    }

    var out = "1\n\(ServerStateLine.header)\n"
    for e in file.entries {
        out += "2 \(e.backend) 1 \(e.server) \(e.address) \(e.opState) \(e.adminBits) \(e.userWeight) "
            + "\(e.initialWeight) 12 6 3 \(e.checkHealth) 6 0 0 0 - \(e.port) - 0 0 - - 0\n"
    }
    let again = ServerStateFile.parse(out)
    fuzzCheck(again.entries == file.entries && again.skippedLines.isEmpty,
              "written back: \(again.entries.count) entries (of \(file.entries.count)), skipped \(again.skippedLines)")
    return 0
}
