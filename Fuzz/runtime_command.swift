@testable import gproxy

/// (c) The runtime API (stats socket) command line parser and its command layer.
/// Invariants: never traps; no more commands than `;`-separated parts; joining two lines with `;`
/// gives the commands of both; a line run in non-interactive mode finishes the session (unless it
/// holds `prompt`),
/// and every command's reply ends with an empty line (HAProxy's end-of-reply marker).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRuntimeCommand(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    let line = String(decoding: bytes, as: UTF8.self)
    let commands = RuntimeCommand.parseLine(line)
    fuzzCheck(commands.count <= bytes.filter { $0 == UInt8(ascii: ";") }.count + 1, "\(commands.count) commands")
    fuzzCheck(RuntimeCommand.parseLine(line) == commands, "two parses differ")

    // Split at the first ';' that stands alone: an even run of backslashes before it, and ASCII
    // after it (a combining mark would make ";" part of a larger character).
    let scalars = Array(line.unicodeScalars)
    if let cut = scalars.indices.first(where: { i in
        scalars[i] == ";" && (i + 1 == scalars.count || scalars[i + 1].isASCII)
            && scalars[..<i].reversed().prefix { $0 == "\\" }.count % 2 == 0
    }) {
        var left = String.UnicodeScalarView(), right = String.UnicodeScalarView()
        left.append(contentsOf: scalars[..<cut])
        right.append(contentsOf: scalars[(cut + 1)...])
        let joined = RuntimeCommand.parseLine(String(left)) + RuntimeCommand.parseLine(String(right))
        fuzzCheck(joined == commands, "split at ';': \(joined) vs \(commands)")
    }

    for level in ["admin", "user"] {
        let cli = RuntimeCLI(admin: FuzzAdmin(), level: level)
        var session = RuntimeCLI.Session()
        let reply = cli.execute(line: line, session: &session)
        // `prompt` switches to interactive mode, where the connection stays open.
        fuzzCheck(session.finished || session.interactive, "a non-interactive session not finished")
        for cmd in commands {
            var s = RuntimeCLI.Session()
            let out = cli.run(cmd, session: &s)
            if cmd == .quit || cmd == .prompt { continue }
            fuzzCheck(out.hasSuffix("\n\n") || out == "\n", "reply to \(cmd) does not end with an empty line")
            if level == "user", case .disableServer = cmd { fuzzCheck(out == "Permission denied\n\n", "user level") }
        }
        if commands.isEmpty { fuzzCheck(reply.isEmpty, "reply to an empty line") }
    }
    return 0
}
