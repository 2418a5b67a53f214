import CEpoll
import Foundation
import Glibc
import Splicer
@testable import gproxy

/// A gproxy process started from config text, for tests that need the real binary (signals,
/// reloads, file-descriptor limits). Always stopped by its pid.
final class GProxyProcess {
    let process = Process()
    let configPath: String

    /// `prefix`: a shell prefix such as `ulimit -n 64;` (the binary then runs under /bin/sh).
    init(config: String, arguments: [String] = [], replacing old: GProxyProcess? = nil, shellPrefix: String? = nil,
         configPath: String? = nil) throws {
        if let configPath {
            self.configPath = configPath
        } else {
            self.configPath = CLITests.write(config)
        }
        var args = ["-q", "-f", self.configPath] + arguments
        if let old { args += ["-sf", "\(old.pid)"] }
        if let shellPrefix {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            let quoted = args.map { "'\($0)'" }.joined(separator: " ")
            process.arguments = ["-c", "\(shellPrefix) exec '\(CLITests.binary)' \(quoted)"]
        } else {
            process.executableURL = URL(fileURLWithPath: CLITests.binary)
            process.arguments = args
        }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func signal(_ s: Int32) { kill(pid, s) }

    /// SIGKILL if still running, then reap.
    func stop() {
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }

    /// The process's resident set in KiB (0 once gone).
    var rssKiB: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
}

/// Blocking UNIX-socket client for the runtime API: nil instead of a crash when the socket is absent.
enum UnixClient {
    static func connect(_ path: String, timeoutSeconds: Int = 5) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { buf in
            for (i, b) in path.utf8.enumerated() where i < buf.count - 1 { buf[i] = b }
        }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            close(fd)
            return nil
        }
        return fd
    }

    /// Sends `text`, half-closes, reads to EOF. nil when the socket cannot be reached.
    static func request(_ path: String, _ text: String) -> String? {
        guard let fd = connect(path) else { return nil }
        defer { close(fd) }
        TestClient.send(fd, text)
        shutdown(fd, Int32(SHUT_WR))
        return TestClient.readAll(fd)
    }
}
