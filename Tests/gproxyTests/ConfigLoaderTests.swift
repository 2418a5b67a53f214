import Glibc
import Testing
@testable import gproxy

@Suite struct ConfigLoaderTests {
    /// A fresh directory under /tmp holding `files`.
    private func makeDirectory(_ files: [String: String]) throws -> String {
        var template = Array("/tmp/gproxy-config-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
        try #require(made)
        let dir = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        for (name, text) in files {
            let f = try #require(fopen(dir + "/" + name, "w") as UnsafeMutablePointer<FILE>?)
            fputs(text, f)
            fclose(f)
        }
        return dir
    }

    private func remove(_ dir: String, _ names: [String]) {
        for name in names { unlink(dir + "/" + name) }
        rmdir(dir)
    }

    @Test func directoryLoadsCfgFilesInByteOrder() throws {
        let files = [
            "b.cfg": "backend B\n    server s 127.0.0.1:1\n",
            "a.cfg": "defaults\n    retries 7\n",
            "Z.cfg": "backend Z\n    server s 127.0.0.1:1\n",
            "c.txt": "this is not read\n",
        ]
        let dir = try makeDirectory(files)
        defer { remove(dir, Array(files.keys)) }
        let config = try ConfigLoader.load(paths: [dir], environment: [:])
        // 'Z' (0x5A) sorts before 'a' in the C locale, so Z is parsed before the defaults in a.cfg.
        #expect(config.proxies.map(\.name) == ["Z", "B"])
        #expect(config.proxies.map(\.retries) == [3, 7])
        #expect(config.proxies.map(\.file) == [dir + "/Z.cfg", dir + "/b.cfg"])
    }

    @Test func eachFileStartsOutsideAnySection() throws {
        do {
            _ = try ConfigLoader.parse(files: [("one.cfg", Array("backend b\n".utf8)),
                                               ("two.cfg", Array("    server s 127.0.0.1:1\n".utf8))])
            Issue.record("accepted")
        } catch {
            #expect(error.description == "two.cfg:1: unknown keyword 'server' out of section.")
        }
    }

    /// HAProxy reports a `*.cfg` entry it cannot open; a dangling symlink used to be skipped silently.
    @Test func aDanglingSymlinkInADirectoryIsAnError() throws {
        let dir = try makeDirectory(["a.cfg": "backend A\n"])
        #expect(symlink("/nonexistent/gproxy-target.cfg", dir + "/b.cfg") == 0)
        defer { remove(dir, ["a.cfg", "b.cfg"]) }
        do {
            _ = try ConfigLoader.load(paths: [dir], environment: [:])
            Issue.record("accepted")
        } catch {
            #expect(error.errors.map(\.description) == [
                "\(dir)/b.cfg: Cannot open configuration file \(dir)/b.cfg : No such file or directory"
            ])
        }
    }

    /// A file name that is not UTF-8 is still a `*.cfg` file (HAProxy reads it); messages show the
    /// odd bytes as `\xNN`.
    @Test func aFileNameThatIsNotUTF8IsRead() throws {
        let dir = try makeDirectory(["a.cfg": "backend A\n"])
        let odd: [UInt8] = Array((dir + "/b").utf8) + [0xFF] + Array(".cfg".utf8) + [0]
        let made = odd.withUnsafeBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { path -> Bool in
                guard let f = fopen(path.baseAddress!, "w") else { return false }
                fputs("backend B\n    server s 127.0.0.1:1 bogus\n", f)
                fclose(f)
                return true
            }
        }
        try #require(made)
        defer {
            odd.withUnsafeBufferPointer { raw in raw.withMemoryRebound(to: CChar.self) { _ = unlink($0.baseAddress!) } }
            remove(dir, ["a.cfg"])
        }
        do {
            _ = try ConfigLoader.load(paths: [dir], environment: [:])
            Issue.record("accepted")
        } catch {
            #expect(error.errors.map(\.description) == ["\(dir)/b\\xff.cfg:2: 'server B/s' : unknown keyword 'bogus'"])
        }
    }

    @Test func missingFile() {
        do {
            _ = try ConfigLoader.load(paths: ["/nonexistent/gproxy.cfg"], environment: [:])
            Issue.record("accepted")
        } catch {
            #expect(error.errors.map(\.message) == [
                "Cannot open configuration file/directory /nonexistent/gproxy.cfg : No such file or directory"
            ])
        }
    }

    @Test func frontendAndBackendMayShareAName() throws {
        let config = try ConfigLoader.parse(text: "frontend x\n  bind :1\n  default_backend x\nbackend x\n", file: "t.cfg")
        #expect(config.proxies.map(\.kind) == [.frontend, .backend])
        #expect(config.warnings.map(\.description) == ["t.cfg:1: missing timeouts for frontend 'x'."])
    }
}
