import Glibc

/// Entry points of the configuration reader: files and directories (`-f`), or text (tests).
///
/// Like `haproxy -f a -f dir`, several paths are read in order into one configuration. A directory
/// contributes its `*.cfg` files in C-locale (byte) order; each file starts outside any section, while
/// the latest `defaults` carries over. All errors are collected; the result is returned only if none.
enum ConfigLoader {
    /// Reads and validates the configuration from `paths` (files or directories).
    static func load(paths: [String], environment: [String: String]) throws(ConfigErrors) -> GProxyConfig {
        var parser = ConfigParser(environment: environment)
        for path in paths {
            guard let files = expand(path) else {
                throw ConfigErrors(errors: [ConfigDiagnostic(
                    file: path, line: 0,
                    message: "Cannot open configuration file/directory \(path) : No such file or directory")])
            }
            for file in files {
                guard let data = readFile(file) else {
                    throw ConfigErrors(errors: [ConfigDiagnostic(
                        file: file, line: 0,
                        message: "Cannot open configuration file/directory \(file) : \(errnoText())")])
                }
                parser.parseFile(data, name: file)
            }
        }
        return try result(of: &parser)
    }

    /// Parses configuration text as if it were the file `file` (no file system access).
    static func parse(text: String, file: String = "haproxy.cfg",
                      environment: [String: String] = [:]) throws(ConfigErrors) -> GProxyConfig {
        try parse(files: [(file, Array(text.utf8))], environment: environment)
    }

    /// Parses several in-memory files in order, as `-f a -f b` would.
    static func parse(files: [(name: String, bytes: [UInt8])],
                      environment: [String: String] = [:]) throws(ConfigErrors) -> GProxyConfig {
        var parser = ConfigParser(environment: environment)
        for (name, bytes) in files { parser.parseFile(bytes, name: name) }
        return try result(of: &parser)
    }

    private static func result(of parser: inout ConfigParser) throws(ConfigErrors) -> GProxyConfig {
        let config = parser.finish()
        if !parser.errors.isEmpty { throw ConfigErrors(errors: parser.errors) }
        return config
    }

    /// A file as itself, a directory as its `*.cfg` regular files sorted bytewise; nil if missing.
    static func expand(_ path: String) -> [String]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { return [path] }
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasSuffix(".cfg"), !name.hasPrefix(".") else { continue }
            let full = path.hasSuffix("/") ? path + name : path + "/" + name
            var st = stat()
            if stat(full, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { names.append(full) }
        }
        // C-locale order is plain byte order.
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    static func readFile(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
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
