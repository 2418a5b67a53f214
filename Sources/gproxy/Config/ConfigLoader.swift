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
                guard let data = readFile(file.path) else {
                    throw ConfigErrors(errors: [ConfigDiagnostic(
                        file: file.name, line: 0,
                        message: "Cannot open configuration file/directory \(file.name) : \(errnoText())")])
                }
                parser.parseFile(data, name: file.name)
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

    static func readFile(_ path: String) -> [UInt8]? { readFile(Array(path.utf8)) }

    static func readFile(_ path: [UInt8]) -> [UInt8]? {
        guard let f = withCString(path, { fopen($0, "rb") }) else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var info = stat()
        if fstat(fileno(f), &info) == 0, info.st_size > 0 { bytes.reserveCapacity(Int(info.st_size)) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { bytes.append(contentsOf: buffer[0..<n]) }
            if n < buffer.count { break }
        }
        return ferror(f) == 0 ? bytes : nil
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
