import Glibc

/// Entry points of the configuration reader: files and directories (`-f`), or text (tests).
///
/// Like `haproxy -f a -f dir`, several paths are read in order into one configuration. A directory
/// contributes its `*.cfg` files in C-locale (byte) order; each file starts outside any section, while
/// the latest `defaults` carries over. All errors are collected; the result is returned only if none.
enum ConfigLoader {
    /// Reads and validates the configuration from `paths` (files or directories).
    static func load(paths: [String], environment: [String: String],
                     resolver: HostResolver = .system) throws(ConfigErrors) -> GProxyConfig {
        var parser = ConfigParser(environment: environment, resolver: resolver)
        for path in paths {
            let files: [ConfigFile]
            switch expand(path) {
            case .failure(let diagnostic): throw ConfigErrors(errors: [diagnostic])
            case .success(let found): files = found
            }
            for file in files {
                guard let f = withCString(file.path, { fopen($0, "rb") }) else {
                    throw ConfigErrors(errors: [ConfigDiagnostic(
                        file: file.name, line: 0,
                        message: "Cannot open configuration file/directory \(file.name) : \(errnoText())")])
                }
                defer { fclose(f) }
                parser.parseFile(name: file.name) { forEachLine(of: f, $0) }
                if ferror(f) != 0 {
                    throw ConfigErrors(errors: [ConfigDiagnostic(
                        file: file.name, line: 0, message: "Cannot read configuration file \(file.name) : \(errnoText())")])
                }
            }
        }
        return try result(of: &parser)
    }

    /// Parses configuration text as if it were the file `file` (no file system access).
    static func parse(text: String, file: String = "haproxy.cfg", environment: [String: String] = [:],
                      resolver: HostResolver = .system) throws(ConfigErrors) -> GProxyConfig {
        try parse(files: [(file, Array(text.utf8))], environment: environment, resolver: resolver)
    }

    /// Parses several in-memory files in order, as `-f a -f b` would.
    static func parse(files: [(name: String, bytes: [UInt8])], environment: [String: String] = [:],
                      resolver: HostResolver = .system) throws(ConfigErrors) -> GProxyConfig {
        var parser = ConfigParser(environment: environment, resolver: resolver)
        for (name, bytes) in files { parser.parseFile(bytes, name: name) }
        return try result(of: &parser)
    }

    private static func result(of parser: inout ConfigParser) throws(ConfigErrors) -> GProxyConfig {
        let config = parser.finish()
        if !parser.errors.isEmpty { throw ConfigErrors(errors: parser.errors) }
        return config
    }

    /// One file to read: its path as bytes (a directory entry need not be UTF-8) and the name
    /// diagnostics use.
    struct ConfigFile: Equatable {
        var path: [UInt8]
        var name: String
        init(path: [UInt8]) {
            self.path = path
            name = ConfigLoader.displayName(path)
        }
    }

    /// A file as itself, a directory as its `*.cfg` entries sorted bytewise (C-locale order). An entry
    /// that cannot be opened (a dangling symlink) is an error, as in HAProxy; directories are skipped.
    static func expand(_ path: String) -> Result<[ConfigFile], ConfigDiagnostic> {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return .failure(ConfigDiagnostic(
                file: path, line: 0,
                message: "Cannot open configuration file/directory \(path) : No such file or directory"))
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { return .success([ConfigFile(path: Array(path.utf8))]) }
        guard let dir = opendir(path) else {
            return .failure(ConfigDiagnostic(
                file: path, line: 0, message: "Cannot open configuration file/directory \(path) : \(errnoText())"))
        }
        defer { closedir(dir) }
        let prefix = Array((path.hasSuffix("/") ? path : path + "/").utf8)
        var files: [ConfigFile] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            guard name.count > 4, name.suffix(4).elementsEqual(".cfg".utf8), name.first != UInt8(ascii: ".") else {
                continue
            }
            let file = ConfigFile(path: prefix + name)
            var st = stat()
            guard withCString(file.path, { stat($0, &st) }) == 0 else {
                return .failure(ConfigDiagnostic(
                    file: file.name, line: 0, message: "Cannot open configuration file \(file.name) : \(errnoText())"))
            }
            if (st.st_mode & S_IFMT) == S_IFREG { files.append(file) }
        }
        return .success(files.sorted { $0.path.lexicographicallyPrecedes($1.path) })
    }

    /// A path for messages: UTF-8 as is, any other byte as `\xNN`.
    static func displayName(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var out = ""
        var parser = Unicode.UTF8.ForwardParser()
        var input = bytes.makeIterator()
        var consumed = 0
        loop: while true {
            switch parser.parseScalar(from: &input) {
            case .valid(let encoded):
                out.unicodeScalars.append(Unicode.UTF8.decode(encoded))
                consumed += encoded.count
            case .error(let length):
                for byte in bytes[consumed..<(consumed + length)] {
                    let hex = String(byte, radix: 16)
                    out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
                }
                consumed += length
            case .emptyInput:
                break loop
            }
        }
        return out
    }

    private static func withCString<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
        (bytes + [0]).withUnsafeBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) }
        }
    }

    /// A file's lines as fgets() gives them to HAProxy (same rules as `ConfigTokenizer.forEachLine`),
    /// read one at a time so a large file never sits whole in memory.
    static func forEachLine(of f: UnsafeMutablePointer<FILE>, _ body: (RawConfigLine) -> Bool)
        -> (line: Int, message: String)? {
        var buffer: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(buffer) }
        var number = 1
        while true {
            let n = getline(&buffer, &capacity, f)
            guard n > 0, let start = buffer else { return nil }  // end of file (ferror tells a failure)
            let bytes = UnsafeRawBufferPointer(start: start, count: n)
            let hasLF = bytes[n - 1] == 0x0A
            let content = hasLF ? n - 1 : n
            if let nul = bytes[..<content].firstIndex(of: 0) {
                // strlen() stops at the NUL: HAProxy parses the head of the line, then gives up on the file.
                guard body(RawConfigLine(number: number, bytes: ArraySlice(bytes[..<nul]))) else { return nil }
                return (number, "Stray NUL character at position \(nul + 1).")
            }
            guard body(RawConfigLine(number: number, bytes: ArraySlice(bytes[..<content]))) else { return nil }
            if !hasLF {
                return (number, "Missing LF on last line, file might have been truncated at position \(content + 1).")
            }
            number += 1
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
