import CEpoll
import Foundation
import Glibc
import Splicer
import Synchronization
import Testing
@testable import gproxy

/// Reload with `-sf`: the new process takes the old one's listening sockets, so connections that
/// arrive while the old process lets go are never reset (HAProxy needs `expose-fd listeners` and
/// `-x` for this; with a plain `-sf` it resets what the old sockets had queued).
@Suite(.serialized) struct ReloadHandoverTests {
    /// A stats listener section on `port` (the hand-over carries its socket too).
    static func statsSection(port: UInt16) -> String {
        "listen stats\n    mode http\n    bind 127.0.0.1:\(port)\n    stats enable\n    stats uri /\n"
    }

    /// Starts `gproxy -q -f config`, replacing `old` (`-sf`) when given.
    static func launch(_ config: String, replacing old: Process? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.binary)
        p.arguments = ["-q", "-f", config] + (old.map { ["-sf", "\($0.processIdentifier)"] } ?? [])
        try p.run()
        return p
    }

    @Test func chainOfReloadsNeverResetsAConnection() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let port = RuntimeHarness.freePort()
        let statsPort = RuntimeHarness.freePort()
        let config = CLITests.write("""
            global
                nbthread 2
            listen rw
                bind 127.0.0.1:\(port)
                server pg1 127.0.0.1:\(cluster.members[0].dbPort)
            \(Self.statsSection(port: statsPort))
            """)
        defer { unlink(config) }
        var current = try Self.launch(config)
        defer { if current.isRunning { kill(current.processIdentifier, SIGTERM) }; current.waitUntilExit() }
        #expect(RuntimeHarness.eventually { RuntimeHarness.nodeBehind(port: port) == "pg1" })

        // Clients connect back to back for the whole test; every one must be served.
        let done = Atomic<Bool>(false)
        let served = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        let hammer = Thread {
            while !done.load(ordering: .relaxed) {
                if RuntimeHarness.nodeBehind(port: port) == "pg1" {
                    served.add(1, ordering: .relaxed)
                } else {
                    failed.add(1, ordering: .relaxed)
                }
            }
        }
        hammer.start()
        for _ in 0..<4 {
            let next = try Self.launch(config, replacing: current)
            #expect(RuntimeHarness.eventually { !current.isRunning })
            #expect(current.terminationStatus == 0)
            current = next
            // The stats listener came over too: the new process could not have bound it otherwise
            // while the old one held it, and it answers.
            #expect(TestClient.get(port: statsPort, "GET /;csv HTTP/1.0\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        }
        usleep(100_000)
        done.store(true, ordering: .relaxed)
        while !hammer.isFinished { usleep(10_000) }
        #expect(failed.load(ordering: .relaxed) == 0)
        #expect(served.load(ordering: .relaxed) > 20)
        #expect(current.isRunning)
    }

    /// HAProxy 2.6 starts every checked server UP after a reload, so until the first check fails new
    /// connections reach a dead server (HAProxy users add a server-state file to their reload script).
    /// gproxy's new process resumes the old one's view: DOWN stays DOWN, MAINT stays MAINT.
    @Test func reloadCarriesServerStateSoNoConnectionReachesADeadServer() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let port = RuntimeHarness.freePort()
        let statsPort = RuntimeHarness.freePort()
        // A node whose port takes connections but never answers (a hung host): its check fails only
        // after `timeout check`, and a session sent to it hangs.
        let deadPort = RuntimeHarness.freePort()
        let blackHole = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(blackHole) }
        var sin = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: deadPort.bigEndian,
                              sin_addr: in_addr(s_addr: UInt32(0x7F00_0001).bigEndian), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        let bound = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(blackHole, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(bound == 0 && listen(blackHole, 64) == 0)
        let api = cluster.members[0].apiPort
        let socketPath = NSTemporaryDirectory() + "gproxy-reload-\(getpid())-\(port).sock"
        defer { unlink(socketPath) }
        let config = CLITests.write("""
            global
                stats socket \(socketPath) level admin
            listen rw
                bind 127.0.0.1:\(port)
                option httpchk
                timeout check 2s
                default-server check inter 1s fall 1 rise 2
                server pg1 127.0.0.1:\(cluster.members[0].dbPort) port \(api)
                server dead 127.0.0.1:\(deadPort)
                server spare 127.0.0.1:\(cluster.members[0].dbPort) port \(api)
            \(Self.statsSection(port: statsPort))
            """)
        defer { unlink(config) }
        func status(_ server: String) -> String? {
            let csv = TestClient.get(port: statsPort, "GET /;csv HTTP/1.0\r\n\r\n")
            let row = csv.split(separator: "\n").first { $0.hasPrefix("rw,\(server),") }
            return row.map { String($0.split(separator: ",", omittingEmptySubsequences: false)[17]) }
        }
        let old = try Self.launch(config)
        defer { if old.isRunning { kill(old.processIdentifier, SIGKILL) }; old.waitUntilExit() }
        #expect(RuntimeHarness.eventually { (try? SimulatedTestClient(port: statsPort)) != nil })
        #expect(RuntimeHarness.eventually(8000) { status("dead") == "DOWN" })
        let fd = StatsRuntimeSocketTests.unixConnect(socketPath)
        _ = write(fd, "disable server rw/spare\n", 24)
        _ = StatsRuntimeSocketTests.readUntil(fd, "\n\n")
        close(fd)
        #expect(status("spare") == "MAINT")

        let new = try Self.launch(config, replacing: old)
        defer { if new.isRunning { kill(new.processIdentifier, SIGTERM) }; new.waitUntilExit() }
        #expect(RuntimeHarness.eventually { !old.isRunning })
        // Only the new process serves now, and its own first check of `dead` needs 2 s to fail: every
        // connection reaches pg1 only if it began with the old process's view.
        var nodes: [String?] = []
        for _ in 0..<12 { nodes.append(RuntimeHarness.nodeBehind(port: port)) }
        #expect(nodes == Array(repeating: "pg1", count: 12))
        #expect(status("dead") == "DOWN")
        #expect(status("spare") == "MAINT")
    }
}

/// `-Ws` under systemd (`Type=notify`, `ExecReload=kill -USR2 $MAINPID`, as Debian's haproxy.service):
/// SIGUSR2 starts a successor that takes over, and systemd is told the new main pid.
@Suite(.serialized) struct SystemdReloadTests {
    /// A unix datagram socket standing in for systemd's notify socket.
    final class NotifySocket {
        let path = NSTemporaryDirectory() + "gproxy-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)

        init() {
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { buf in for (i, b) in path.utf8.enumerated() { buf[i] = b } }
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            var tv = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }

        /// The next message as KEY=value pairs, nil after 10 s.
        func next() -> [String: String]? {
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return nil }
            var out: [String: String] = [:]
            for line in String(decoding: buf[0..<n], as: UTF8.self).split(separator: "\n") {
                let kv = line.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { out[String(kv[0])] = String(kv[1]) }
            }
            return out
        }

        deinit {
            close(fd)
            unlink(path)
        }
    }

    /// Running (not exited, not a zombie): the successor is not this process's child.
    static func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        return stat.split(separator: ")").last?.split(separator: " ").first != "Z"
    }

    @Test func sigusr2ReloadsAndTellsSystemdTheNewMainPID() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let notify = NotifySocket()
        let port = RuntimeHarness.freePort()
        let text = "listen rw\n    bind 127.0.0.1:\(port)\n    server pg1 127.0.0.1:\(cluster.members[0].dbPort)\n"
        let config = CLITests.write(text)
        defer { unlink(config) }
        let pidFile = config + ".pid"
        defer { unlink(pidFile) }
        let first = Process()
        first.executableURL = URL(fileURLWithPath: CLITests.binary)
        first.arguments = ["-Ws", "-q", "-f", config, "-p", pidFile]
        first.environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": notify.path]) { $1 }
        try first.run()
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) }; first.waitUntilExit() }
        let ready = notify.next()
        #expect(ready?["READY"] == "1" && ready?["MAINPID"] == "\(first.processIdentifier)")
        #expect(RuntimeHarness.nodeBehind(port: port) == "pg1")

        // systemd's ExecReload: kill -USR2 $MAINPID.
        kill(first.processIdentifier, SIGUSR2)
        let reloaded = notify.next()
        let successor = Int32(reloaded?["MAINPID"] ?? "") ?? 0
        defer { if successor > 0 && Self.alive(successor) { kill(successor, SIGKILL) } }
        #expect(reloaded?["READY"] == "1" && successor > 0 && successor != first.processIdentifier)
        #expect(RuntimeHarness.eventually { !first.isRunning })
        #expect(first.terminationStatus == 0)
        #expect(Self.alive(successor))
        #expect(RuntimeHarness.nodeBehind(port: port) == "pg1")
        #expect(RuntimeHarness.eventually {
            FileManager.default.contents(atPath: pidFile).map { String(decoding: $0, as: UTF8.self) } == "\(successor)\n"
        })

        // A reload with a broken config: the successor's successor exits, this one keeps serving.
        try "listen rw\n    bind 127.0.0.1:\(port)\n    frobnicate\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(successor, SIGUSR2)
        usleep(1_000_000)
        #expect(Self.alive(successor))
        #expect(RuntimeHarness.nodeBehind(port: port) == "pg1")
        kill(successor, SIGTERM)
        #expect(RuntimeHarness.eventually { !Self.alive(successor) })
    }
}

/// The hand-over protocol itself, in-process: sockets arrive as working duplicates, and a state text
/// larger than one message arrives whole.
@Suite(.serialized) struct ReloadHandoverProtocolTests {
    @Test func socketsAndALargeStateTextArriveIntact() throws {
        let port = RuntimeHarness.freePort()
        let address = try #require(SocketAddress(ip: "127.0.0.1", port: port))
        let listener = try Socket.listen(on: address, reusePort: true, backlog: 16)
        defer { Socket.close(listener) }
        // ~60 KiB: several 16 KiB messages.
        let state = "1\n" + (0..<600).map { "3 pg \($0) pg\($0) 127.0.0.1 2 0 1 1 5 6 3 4 6 0 0 0 - \(20000 + $0) - 0 0 - - 0\n" }.joined()
        #expect(state.utf8.count > 40_000)
        let directory = HandoverDirectory.current(environment: ["GPROXY_RUNTIME_DIR": NSTemporaryDirectory() + "gproxy-ho-\(getpid())"])
        let dir = try #require(directory.path)
        let control = try ControlLoop()
        let server = try HandoverEndpoint(directory: dir, control: control) { ([fcntl(listener, F_DUPFD_CLOEXEC, 0)], state) }
        control.start()
        defer { server.close(); control.stop(); rmdir(dir) }
        let legacy = ReloadHandover.receive(from: getpid(), directory: directory)
        defer { for fd in legacy.listeners { Socket.close(fd) } }
        #expect(legacy.problem == nil)
        #expect(legacy.serverState == state)
        #expect(legacy.listeners.count == 1)
        #expect(legacy.listeners.first.flatMap { Socket.localAddress(of: $0) } == address)
        // Not ours to ask: a pid with no gproxy behind it yields nothing, and the caller binds as usual.
        let none = ReloadHandover.receive(from: 1, directory: directory)
        #expect(none.listeners.isEmpty && none.problem != nil)
    }
}

/// The hand-over endpoint against a hostile local user (issue: trust).
@Suite(.serialized) struct ReloadHandoverSafetyTests {
    /// Binds the abstract name an older gproxy used for `pid`'s hand-over and fills its backlog.
    final class Squatter {
        let fd: Int32
        var clients: [Int32] = []
        init(pid: Int32) {
            fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let name = Array("gproxy-listeners-\(pid)".utf8)
            withUnsafeMutableBytes(of: &addr.sun_path) { buf in
                for (i, b) in name.enumerated() { buf[i + 1] = b }
            }
            let len = socklen_t(MemoryLayout<sa_family_t>.size + 1 + name.count)
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
            listen(fd, 0)
            // Fill the backlog: a further blocking connect would wait forever.
            for _ in 0..<8 {
                let c = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, len) } }
                clients.append(c)
                if rc != 0 && errno == EAGAIN { break }
            }
        }
        deinit { for c in clients { close(c) }; close(fd) }
    }

    /// Finding: anyone could bind the hand-over name first and fill its backlog; `gproxy -sf PID`
    /// then blocked forever in connect() with SIGTERM/SIGINT already blocked. Every step of the
    /// hand-over is bounded in time, and the process starts serving (binding anew) after it.
    @Test func aSquattedHandoverEndpointNeverBlocksStartUp() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        // The "old process" is any process (as when moving from haproxy): its name is squatted.
        let old = Process()
        old.executableURL = URL(fileURLWithPath: "/bin/sleep")
        old.arguments = ["60"]
        try old.run()
        defer { if old.isRunning { kill(old.processIdentifier, SIGKILL) }; old.waitUntilExit() }
        let squatter = Squatter(pid: old.processIdentifier)
        defer { withExtendedLifetime(squatter) {} }
        let port = RuntimeHarness.freePort()
        let g = try GProxyProcess(config: """
            listen rw
                bind 127.0.0.1:\(port)
                server pg1 127.0.0.1:\(cluster.members[0].dbPort)

            """, arguments: ["-sf", "\(old.processIdentifier)"])
        defer { g.stop(); unlink(g.configPath) }
        #expect(RuntimeHarness.eventually(15_000) { RuntimeHarness.nodeBehind(port: port) == "pg1" })
        // And it still answers a plain SIGTERM (start-up did not hang with signals blocked).
        g.signal(SIGTERM)
        #expect(RuntimeHarness.eventually(5000) { !g.isRunning })
    }

    /// The hand-over socket lives only in a directory nobody else can write to: a shared or foreign
    /// one is refused (and reported), never used.
    @Test func handoverDirectoryMustBePrivate() throws {
        let dir = NSTemporaryDirectory() + "gproxy-priv-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { rmdir(dir) }
        #expect(HandoverDirectory.privacyProblem(dir) == nil)
        var st = stat()
        #expect(stat(dir, &st) == 0 && st.st_mode & 0o777 == 0o700)
        chmod(dir, 0o777)
        #expect(HandoverDirectory.privacyProblem(dir)?.contains("writable by others") == true)
        chmod(dir, 0o700)
        if geteuid() == 0 {
            chown(dir, 65534, 65534)
            #expect(HandoverDirectory.privacyProblem(dir)?.contains("belongs to uid 65534") == true)
            chown(dir, 0, 0)
        }
        let file = dir + "-file"
        close(open(file, O_CREAT | O_WRONLY, 0o600))
        defer { unlink(file) }
        #expect(HandoverDirectory.privacyProblem(file)?.contains("not a directory") == true)
        let chosen = HandoverDirectory.current(environment: ["GPROXY_RUNTIME_DIR": file])
        #expect(chosen.path == nil && chosen.problem?.hasPrefix("reload hand-over disabled") == true)
    }
}
