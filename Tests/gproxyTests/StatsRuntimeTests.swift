import CEpoll
import Glibc
import Splicer
import Testing
@testable import gproxy

/// An in-memory engine: applies admin changes to a snapshot.
final class FakeAdmin: RuntimeAdmin, @unchecked Sendable {
    private let lock = PThreadLock()
    private var snap = StatsFixtures.snapshot

    func snapshot() -> StatsSnapshot { lock.withLock { snap } }

    private func mutate(_ b: String, _ s: String, _ f: (inout ServerStats) -> Void) -> String? {
        lock.withLock {
            guard let p = snap.proxies.firstIndex(where: { $0.name == b }),
                  let i = snap.proxies[p].servers.firstIndex(where: { $0.name == s }) else { return "not found" }
            f(&snap.proxies[p].servers[i])
            return nil
        }
    }

    func setServerAdmin(backend: String, server: String, state: ServerAdminState) -> String? {
        mutate(backend, server) {
            $0.adminState = state
            $0.status = state == .maint ? "MAINT" : state == .drain ? "DRAIN" : "UP"
        }
    }

    /// Servers whose sessions `shutdown sessions server` cut, in order.
    private(set) var shutdowns: [String] = []

    func shutdownSessions(backend: String, server: String) -> String? {
        mutate(backend, server) { _ in } ?? lock.withLock { shutdowns.append("\(backend)/\(server)"); return nil }
    }

    /// `clear counters` calls, `true` for `all`.
    private(set) var clears: [Bool] = []

    func clearCounters(all: Bool) { lock.withLock { clears.append(all) } }

    func setServerWeight(backend: String, server: String, weight: Int) -> String? {
        mutate(backend, server) {
            $0.userWeight = weight
            $0.weight = weight
        }
    }
}

@Suite struct StatsRuntimeCLITests {
    func run(_ line: String, admin: FakeAdmin = FakeAdmin()) -> String {
        var session = RuntimeCLI.Session()
        let out = RuntimeCLI(admin: admin).execute(line: line, session: &session)
        #expect(session.finished)
        return out
    }

    @Test func parsing() {
        #expect(RuntimeCommand.parseLine("show stat; show info") == [.showStat(json: false, filter: .init()), .showInfo])
        #expect(RuntimeCommand.parseLine("show stat json") == [.showStat(json: true, filter: .init())])
        #expect(RuntimeCommand.parseLine("set server a/b state drain") == [.setServerState(backend: "a", server: "b", state: .drain)])
        #expect(RuntimeCommand.parseLine("set weight a/b 50%") == [.setWeight(backend: "a", server: "b", weight: "50%")])
        #expect(RuntimeCommand.parseLine("disable server nope") == [.usage("Require 'backend/server'.")])
        #expect(RuntimeCommand.parseLine("  ;; ") == [])
        #expect(RuntimeCommand.parseLine("frob x") == [.unknown("frob x")])
    }

    @Test func helpAndUnknown() {
        #expect(run("help").hasPrefix("The following commands are valid at this level:\n"))
        let u = run("frobnicate")
        #expect(u.hasPrefix("Unknown command: 'frobnicate'\n"))
        #expect(u.contains("help           : this message"))
        #expect(u.hasSuffix("\n\n"))
    }

    @Test func showInfoAndStat() {
        let info = run("show info")
        #expect(info.contains("Pid: 4242\n") && info.contains("Uptime_sec: 7400\n") && info.contains("Uptime: 0d 2h03m20s\n"))
        #expect(info.hasSuffix("\n\n"))
        #expect(run("show stat") == StatsCSV.render(StatsFixtures.snapshot) + "\n")
        #expect(run("show stat json").hasPrefix("[["))
    }

    @Test func showServersState() {
        let out = run("show servers state opengauss_balance")
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "1")
        #expect(lines[1] == Substring(ServerStateLine.header))
        #expect(lines[2] == "3 opengauss_balance 1 pg1 10.0.0.1 0 0 1 1 5 17 2 0 6 0 0 0 - 5432 - 0 8432 - - 8432")
        #expect(lines[3] == "3 opengauss_balance 2 pg2 10.0.0.2 2 0 1 1 7380 15 3 4 6 0 0 0 - 5432 - 0 8432 - - 8432")
        #expect(lines.count == 2 + 4 + 2 && out.hasSuffix("\n\n"))
        #expect(lines.dropFirst(2).prefix(4).allSatisfy { $0.split(separator: " ").count == 25 })
        #expect(run("show servers state").split(separator: "\n").count == 2 + 8)
        #expect(run("show servers state #2").contains("2 opengauss 1 pg1 "))
        #expect(run("show servers state nope") == "Can't find backend.\n\n")
    }

    @Test func adminCommands() {
        let admin = FakeAdmin()
        #expect(run("disable server opengauss/pg1", admin: admin) == "\n")
        #expect(admin.snapshot().proxies[0].servers[0].adminState == .maint)
        #expect(run("show servers state opengauss", admin: admin).contains("2 opengauss 1 pg1 10.0.0.1 0 1 "))
        #expect(run("enable server opengauss/pg1", admin: admin) == "\n")
        #expect(admin.snapshot().proxies[0].servers[0].adminState == .ready)
        #expect(run("set server opengauss/#2 state drain", admin: admin) == "\n")
        #expect(admin.snapshot().proxies[0].servers[1].adminState == .drain)
        #expect(run("set server opengauss/pg2 state bogus", admin: admin).hasPrefix("'set server <srv> state' expects"))
        #expect(run("set server opengauss/pg1 weight 7", admin: admin) == "\n")
        #expect(run("get weight opengauss/pg1", admin: admin) == "7 (initial 1)\n\n")
        #expect(run("set weight opengauss/pg1 0", admin: admin) == "\n")
        #expect(run("get weight opengauss/pg1", admin: admin) == "0 (initial 1)\n\n")
        #expect(run("set weight opengauss/pg1 257", admin: admin).hasPrefix("Absolute weight can only be between 0 and 256"))
        #expect(run("set weight opengauss/pg1 x", admin: admin).hasPrefix("Require <weight>"))
        #expect(run("set weight opengauss/pg1 100%", admin: admin) == "\n")
        #expect(run("get weight opengauss/pg1", admin: admin) == "1 (initial 1)\n\n")
        #expect(run("disable server nope/pg1", admin: admin) == "No such backend.\n\n")
        #expect(run("disable server opengauss/pg9", admin: admin) == "No such server.\n\n")
        #expect(run("get weight stats/x", admin: admin) == "No such server.\n\n")
    }

    @Test func shutdownSessionsNamesOneServer() {
        let admin = FakeAdmin()
        #expect(run("shutdown sessions server opengauss/pg2", admin: admin) == "\n")
        #expect(admin.shutdowns == ["opengauss/pg2"])
        #expect(run("shutdown sessions opengauss/x", admin: admin) == "Require 'server <backend>/<server>'.\n\n")
    }

    @Test func clearCountersParsesAndNeedsTheRightLevel() {
        #expect(RuntimeCommand.parseLine("clear counters") == [.clearCounters(all: false)])
        #expect(RuntimeCommand.parseLine("clear counters all") == [.clearCounters(all: true)])
        let admin = FakeAdmin()
        func run(_ line: String, _ level: String) -> String {
            var session = RuntimeCLI.Session()
            return RuntimeCLI(admin: admin, level: level).execute(line: line, session: &session)
        }
        // HAProxy: the max values need `operator`, everything needs `admin`.
        #expect(run("clear counters", "user") == "Permission denied\n\n")
        #expect(run("clear counters", "operator") == "\n")
        #expect(run("clear counters all", "operator") == "Permission denied\n\n")
        #expect(run("clear counters all", "admin") == "\n")
        #expect(admin.clears == [false, true])
    }

    @Test func changingServersNeedsTheAdminLevel() {
        let admin = FakeAdmin()
        for level in ["user", "operator"] {
            var session = RuntimeCLI.Session()
            let cli = RuntimeCLI(admin: admin, level: level)
            #expect(cli.execute(line: "disable server opengauss/pg1", session: &session) == "Permission denied\n\n")
            session = RuntimeCLI.Session()
            #expect(cli.execute(line: "show stat", session: &session).hasPrefix("# pxname,svname,"))
        }
    }

    @Test func severalCommandsAndQuit() {
        let out = run("get weight opengauss/pg1; get weight opengauss/pg2")
        #expect(out == "1 (initial 1)\n\n1 (initial 1)\n\n")
        var session = RuntimeCLI.Session()
        let cli = RuntimeCLI(admin: FakeAdmin())
        #expect(cli.execute(line: "prompt", session: &session) == "> ")
        #expect(!session.finished && session.interactive)
        #expect(cli.execute(line: "get weight opengauss/pg1", session: &session) == "1 (initial 1)\n\n> ")
        #expect(cli.execute(line: "quit", session: &session) == "")
        #expect(session.finished)
    }
}

@Suite struct StatsRuntimeSocketTests {
    static func unixConnect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { buf in
            for (i, b) in path.utf8.enumerated() { buf[i] = b }
        }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        precondition(rc == 0, "connect \(errno)")
        return fd
    }

    /// Reads until `suffix` arrives or EOF.
    static func readUntil(_ fd: Int32, _ suffix: String) -> String {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: out, as: UTF8.self).hasSuffix(suffix) {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func oneShotAndPromptOverUnixSocket() throws {
        let path = "/tmp/gproxy-stats-test-\(getpid())-\(cepoll_monotonic_us()).sock"
        // A stale file must be replaced.
        close(open(path, O_CREAT | O_WRONLY, 0o600))
        let control = try ControlLoop()
        let server = RuntimeSocketServer(path: path, mode: 0o600, admin: FakeAdmin(), control: control)
        try server.start()
        control.start()
        defer {
            server.stop()
            control.stop()
            #expect(access(path, F_OK) != 0)
        }
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o600)

        // One command per connection: reply, then the server closes.
        let a = Self.unixConnect(path)
        TestClient.send(a, "get weight opengauss/pg1\n")
        #expect(TestClient.readAll(a) == "1 (initial 1)\n\n")
        close(a)

        // Several commands separated by ';' on one line; the last without a newline is run at EOF.
        let b = Self.unixConnect(path)
        TestClient.send(b, "set weight opengauss/pg1 3; get weight opengauss/pg1")
        shutdown(b, Int32(SHUT_WR))
        #expect(TestClient.readAll(b) == "\n3 (initial 1)\n\n")
        close(b)

        // Interactive mode keeps the connection for several commands.
        let c = Self.unixConnect(path)
        TestClient.send(c, "prompt\n")
        #expect(Self.readUntil(c, "> ") == "> ")
        TestClient.send(c, "get weight opengauss/pg1\n")
        #expect(Self.readUntil(c, "> ") == "3 (initial 1)\n\n> ")
        TestClient.send(c, "show servers state opengauss\n")
        let state = Self.readUntil(c, "> ")
        #expect(state.hasPrefix("1\n# be_id be_name"))
        TestClient.send(c, "quit\n")
        #expect(TestClient.readAll(c) == "")
        close(c)
    }
}
