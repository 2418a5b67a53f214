import Foundation
import Glibc
import Testing
@testable import gproxy

/// The gproxy binary itself: `-c`, exit codes, signals, pidfile. Every process started here is
/// stopped by its pid.
@Suite(.serialized) struct CLITests {
    /// The built binary (debug build next to the test bundle), or `$GPROXY_BIN`.
    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["GPROXY_BIN"], FileManager.default.isExecutableFile(atPath: b) {
            return b
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/gproxy").path
    }

    static func write(_ text: String) -> String {
        let path = NSTemporaryDirectory() + "gproxy-cli-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).cfg"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    /// Runs gproxy to completion; returns (status, stdout, stderr).
    static func run(_ args: [String]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// `--demo` writes its generated config to a temp file; it must not outlive the demo.
    @Test func theDemoRemovesItsGeneratedConfigWhenItStops() throws {
        // Ports base, base+1 and base+2000 (the seed's 5000/5001/7000 spacing), from the private range.
        var base = RuntimeHarness.freePort()
        while base > 29_000 { base = RuntimeHarness.freePort() }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["--demo", "--demo-port-base", "\(base)"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        let path = NSTemporaryDirectory() + "gproxy-demo-\(p.processIdentifier).cfg"
        // Up (listening, so its signal handling is in place) before it is told to stop.
        #expect(RuntimeHarness.eventually(10_000) { access(path, F_OK) == 0 && (try? SimulatedTestClient(port: base)) != nil })
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(access(path, F_OK) != 0, "\(path) is left behind")
    }

    @Test func checkAcceptsTheSeedConfigWithHAProxysWarnings() throws {
        let path = Self.write("""
            listen opengauss
                bind 127.0.0.1:15000
                option httpchk
                http-check expect status 200
                default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions
                server opengauss_ip1_port1 127.0.0.1:16001 maxconn 100 check port 18008

            listen stats
                mode http
                bind 127.0.0.1:17000
                stats enable
                stats uri /

            """)
        defer { unlink(path) }
        let (status, out, err) = try Self.run(["-c", "-f", path])
        #expect(status == 0)
        #expect(out.contains("Configuration file is valid"))
        #expect(err.contains("\(path):1: warning: missing timeouts for proxy 'opengauss'."))
    }

    /// Warnings are printed when gproxy starts, not only under -c (as HAProxy does).
    @Test func warningsArePrintedAtStartToo() throws {
        let port = RuntimeHarness.freePort()
        let path = Self.write("""
            listen opengauss
                bind 127.0.0.1:\(port)
                server s1 127.0.0.1:1

            """)
        defer { unlink(path) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["-f", path]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        #expect(RuntimeHarness.eventually(10_000) { (try? SimulatedTestClient(port: port)) != nil })
        kill(p.processIdentifier, SIGTERM)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(text.contains("\(path):1: warning: missing timeouts for proxy 'opengauss'."), "stderr: \(text)")
    }

    @Test func checkReportsEveryErrorWithFileAndLineAndFails() throws {
        let path = Self.write("""
            listen x
                bind 127.0.0.1:0
                chek
                server s1 127.0.0.1:1 weight 300

            """)
        defer { unlink(path) }
        let (status, out, err) = try Self.run(["-c", "-f", path])
        #expect(status == 1)
        #expect(!out.contains("valid"))
        #expect(err.contains("\(path):2: 'bind' : invalid port '0'"))
        #expect(err.contains("\(path):3: unknown keyword 'chek' in 'listen' section"))
        #expect(err.contains("\(path):4:"))
        // -q: only the exit code.
        let (qs, qo, qe) = try Self.run(["-c", "-q", "-f", path])
        #expect(qs == 1 && qo.isEmpty && qe.isEmpty)
    }

    @Test func usageErrorsAndVersion() throws {
        #expect(try Self.run([]).0 == 1)
        #expect(try Self.run(["-x"]).2.contains("unknown option '-x'"))
        #expect(try Self.run(["-D", "-f", "x"]).2.contains("not implemented"))
        let (vs, vo, _) = try Self.run(["-v"])
        #expect(vs == 0 && vo.hasPrefix("gproxy version"))
        #expect(try Self.run(["-c", "-f", "/nonexistent.cfg"]).2
            .contains("Cannot open configuration file/directory /nonexistent.cfg : No such file or directory"))
    }

    @Test func checkFailsOnAServerAddressThatDoesNotResolve() throws {
        let path = Self.write("backend b\n    server s1 no-such-host.invalid:5432\n    server s2 127.0.0.300:5432\n")
        defer { unlink(path) }
        let (status, out, err) = try Self.run(["-c", "-f", path])
        #expect(status == 1)
        #expect(!out.contains("valid"))
        #expect(err.contains("\(path):2: 'server b/s1' : could not resolve address 'no-such-host.invalid'.\n"))
        #expect(err.contains("\(path):3: 'server b/s2' : could not resolve address '127.0.0.300'.\n"))
    }

    /// Runs the binary under `soft`/`hard` RLIMIT_NOFILE (set by the shell before exec, so the pid is gproxy's).
    static func startLimited(soft: Int, hard: Int, _ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        let quoted = args.map { "'\($0)'" }.joined(separator: " ")
        p.arguments = ["-c", "ulimit -S -n \(soft) && ulimit -H -n \(hard) && exec '\(binary)' \(quoted)"]
        p.standardOutput = Pipe()
        p.standardError = Pipe()
        try p.run()
        return p
    }

    /// HAProxy raises RLIMIT_NOFILE to what the global maxconn needs (two sockets per connection plus
    /// listeners, checks and its own), and refuses to start when it cannot (strict-limits, 2.6's default).
    @Test func anExplicitMaxconnTheFDLimitCannotHoldIsRefused() throws {
        let port = RuntimeHarness.freePort()
        let config = Self.write("global\n    maxconn 1000\n    nbthread 1\nlisten rw\n    bind 127.0.0.1:\(port)\n"
            + "    server s 127.0.0.1:1\n")
        defer { unlink(config) }
        let p = try Self.startLimited(soft: 512, hard: 1024, ["-f", config])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) }; p.waitUntilExit() }
        guard RuntimeHarness.eventually(5000, { !p.isRunning }) else {
            Issue.record("started although maxconn 1000 cannot fit in 1024 file descriptors")
            return
        }
        let err = (p.standardError as! Pipe).fileHandleForReading.readDataToEndOfFile()
        #expect(p.terminationStatus == 1)
        let text = String(decoding: err, as: UTF8.self)
        #expect(text.contains("Cannot raise FD limit to 2014, limit is 1024."), "\(text)")
    }

    @Test func aMaxconnThatFitsUnderTheHardLimitRaisesTheSoftLimitAndStarts() throws {
        let port = RuntimeHarness.freePort()
        let config = Self.write("global\n    maxconn 400\n    nbthread 1\nlisten rw\n    bind 127.0.0.1:\(port)\n"
            + "    server s 127.0.0.1:1\n")
        defer { unlink(config) }
        let p = try Self.startLimited(soft: 256, hard: 1024, ["-f", config])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) }; p.waitUntilExit() }
        #expect(RuntimeHarness.eventually { (try? SimulatedTestClient(port: port)) != nil })
        #expect(p.isRunning)
        let limits = try String(contentsOfFile: "/proc/\(p.processIdentifier)/limits", encoding: .utf8)
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let soft = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first.flatMap { Int($0) } ?? 0
        #expect(soft >= 2 * 400 + 14, "\(line)")
    }

    /// Starts gproxy on a config with one listen in front of an echo-ish simulated node.
    final class Running {
        let process = Process()
        let port: UInt16
        let pidFile: String
        let cluster: SimulatedCluster
        let config: String

        init() throws {
            cluster = try SimulatedCluster(memberCount: 1)
            port = RuntimeHarness.freePort()
            pidFile = NSTemporaryDirectory() + "gproxy-cli-\(getpid())-\(port).pid"
            config = CLITests.write("""
                listen rw
                    bind 127.0.0.1:\(port)
                    server pg1 127.0.0.1:\(cluster.members[0].dbPort)

                """)
            process.executableURL = URL(fileURLWithPath: CLITests.binary)
            process.arguments = ["-f", config, "-p", pidFile, "-q"]
            try process.run()
            _ = RuntimeHarness.eventually { (try? SimulatedTestClient(port: self.port)) != nil }
        }

        func signal(_ s: Int32) { kill(process.processIdentifier, s) }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            cluster.stop()
            unlink(config)
        }
    }

    /// A session established before `process` was told to finish still echoes `word`; once the
    /// client ends it, the process exits with status 0. False (recorded) if the session was cut.
    static func sessionOutlivesStop(_ session: SimulatedTestClient, of process: Process, _ word: String) -> Bool {
        session.send(word)
        guard case .success(let echo) = session.readChunk(timeoutMs: 2000) else {
            Issue.record("the stop cut the established session")
            return false
        }
        #expect(echo == Array(word.utf8))
        #expect(process.isRunning)
        session.shutdownWrite()
        _ = session.readToEnd(timeoutMs: 2000)
        #expect(RuntimeHarness.eventually { !process.isRunning })
        #expect(process.terminationStatus == 0)
        return true
    }

    @Test func softStopLetsSessionsFinishThenExits() throws {
        let g = try Running()
        defer { g.stop() }
        #expect(RuntimeHarness.eventually {
            FileManager.default.contents(atPath: g.pidFile).map { String(decoding: $0, as: UTF8.self) }
                == "\(g.process.processIdentifier)\n"
        })
        let session = try SimulatedTestClient(port: g.port)
        #expect(session.readLine(timeoutMs: 2000)?.contains("node=pg1") == true)
        g.signal(SIGUSR1)
        // Listeners close at once: new connections are refused...
        #expect(RuntimeHarness.eventually { (try? SimulatedTestClient(port: g.port)) == nil })
        // ...but the established session keeps working, and the process waits for it.
        guard Self.sessionOutlivesStop(session, of: g.process, "bye") else { return }
        #expect(!FileManager.default.fileExists(atPath: g.pidFile))
    }

    @Test func runningOutOfFileDescriptorsBacksOffInsteadOfSpinning() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let port = RuntimeHarness.freePort()
        // No global maxconn: an explicit one that 48 fds cannot hold is refused at start-up (see
        // anExplicitMaxconnTheFDLimitCannotHoldIsRefused); the automatic one still outgrows 48 fds.
        let config = Self.write("""
            global
                nbthread 1
            listen rw
                bind 127.0.0.1:\(port)
                server pg1 127.0.0.1:\(cluster.members[0].dbPort)

            """)
        defer { unlink(config) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        // 48 fds: a dozen sessions fit, then accept4 fails with EMFILE.
        p.arguments = ["-c", "ulimit -n 48; exec '\(Self.binary)' -q -f '\(config)'"]
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) }; p.waitUntilExit() }
        #expect(RuntimeHarness.eventually { RuntimeHarness.nodeBehind(port: port) == "pg1" })
        var clients: [SimulatedTestClient] = []
        for _ in 0..<60 { if let c = try? SimulatedTestClient(port: port) { clients.append(c) } }
        // Some were served, the rest wait in the kernel backlog: the fd limit was hit.
        let served = clients.prefix { $0.readLine(timeoutMs: 300) != nil }.count
        #expect(served > 0 && served < 60)
        func cpuTicks() -> Int {
            guard let stat = try? String(contentsOfFile: "/proc/\(p.processIdentifier)/stat", encoding: .utf8) else { return 0 }
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            return fields.count > 13 ? (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0) : 0
        }
        let before = cpuTicks()
        sleep(1)
        // A ready listener it cannot accept from must not make it spin: well under a core.
        #expect(cpuTicks() - before < 50)
        #expect(p.isRunning)
        clients.removeAll()
        #expect(RuntimeHarness.eventually { RuntimeHarness.nodeBehind(port: port) == "pg1" })
    }

    @Test func reloadWithSfHandsThePortOverAndLetsOldSessionsFinish() throws {
        let old = try Running()
        defer { old.stop() }
        let session = try SimulatedTestClient(port: old.port)
        #expect(session.readLine(timeoutMs: 2000)?.contains("node=pg1") == true)
        // The new process binds the same port, then asks the old one to finish.
        let new = Process()
        new.executableURL = URL(fileURLWithPath: Self.binary)
        new.arguments = ["-q", "-f", old.config, "-sf", "\(old.process.processIdentifier)"]
        try new.run()
        defer { if new.isRunning { kill(new.processIdentifier, SIGTERM) }; new.waitUntilExit() }
        // New connections keep being served throughout (by whichever process holds the port)...
        for _ in 0..<20 { #expect(RuntimeHarness.nodeBehind(port: old.port) == "pg1") }
        // ...the old session still works, and the old process waits for it before exiting.
        guard Self.sessionOutlivesStop(session, of: old.process, "still") else { return }
        #expect(new.isRunning)
        #expect(RuntimeHarness.nodeBehind(port: old.port) == "pg1")
    }

    @Test func pauseAndResumeListenersWithTTOUAndTTIN() throws {
        let g = try Running()
        defer { g.stop() }
        g.signal(SIGTTOU)
        #expect(RuntimeHarness.eventually { (try? SimulatedTestClient(port: g.port)) == nil })
        g.signal(SIGTTIN)
        #expect(RuntimeHarness.eventually { RuntimeHarness.nodeBehind(port: g.port) == "pg1" })
        g.signal(SIGTERM)
        #expect(RuntimeHarness.eventually { !g.process.isRunning })
    }
}
