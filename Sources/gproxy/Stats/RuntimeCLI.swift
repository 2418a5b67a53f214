/// The runtime API's command layer (§10): executes parsed `RuntimeCommand`s against the engine
/// through `RuntimeAdmin`, and formats replies the way HAProxy 2.6 does. Each command's reply ends
/// with an empty line; in interactive (`prompt`) mode a `> ` prompt follows each input line.

/// What the CLI needs from the running proxy. Names given to the setters are already resolved
/// (`#id` turned into names, existence checked against `snapshot()`); a non-nil return is the
/// error text to show.
protocol RuntimeAdmin: Sendable {
    func snapshot() -> StatsSnapshot
    func setServerAdmin(backend: String, server: String, state: ServerAdminState) -> String?
    func setServerWeight(backend: String, server: String, weight: Int) -> String?
    /// Cuts the server's established sessions; error text or nil.
    func shutdownSessions(backend: String, server: String) -> String?
    /// `show servers state` lines; the default derives them from `snapshot()`.
    func serversState(backend: String?) -> [ServerStateLine]
    /// `clear counters [all]`.
    func clearCounters(all: Bool)
}

extension RuntimeAdmin {
    func serversState(backend: String?) -> [ServerStateLine] {
        ServerStateLine.lines(from: snapshot(), backend: backend)
    }
}

/// One line of `show servers state` (format version 1).
struct ServerStateLine: Sendable, Equatable {
    static let header = "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port"

    var backendId: Int
    var backendName: String
    var serverId: Int
    var serverName: String
    var address: String
    var opState: Int
    var adminState: Int
    var userWeight: Int
    var initialWeight: Int
    var timeSinceLastChange: Int
    var checkStatus: Int
    var checkResult: Int
    var checkHealth: Int
    /// Bitmask: 0x02 configured, 0x04 enabled, 0x08 paused.
    var checkState: Int
    var port: Int
    var checkPort: Int

    /// The space-separated line; fields gproxy does not have print as HAProxy prints them unset.
    var text: String {
        "\(backendId) \(backendName) \(serverId) \(serverName) \(address) \(opState) \(adminState) "
            + "\(userWeight) \(initialWeight) \(timeSinceLastChange) \(checkStatus) \(checkResult) "
            + "\(checkHealth) \(checkState) 0 0 0 - \(port) - 0 \(checkPort) - - \(checkPort)"
    }

    init(proxy px: ProxyStats, server sv: ServerStats) {
        backendId = px.id
        backendName = px.name
        serverId = sv.id
        serverName = sv.name
        let (host, port) = sv.addressParts
        address = host
        self.port = port
        opState = sv.operationalState
        adminState = sv.adminStateBits
        userWeight = sv.userWeight
        initialWeight = sv.effectiveInitialWeight
        timeSinceLastChange = sv.lastChangeSeconds
        checkStatus = sv.checked ? (sv.checkStatus ?? .unknown).number : 0
        checkResult = sv.checkResult
        checkHealth = sv.checkHealth
        checkState = sv.checked ? (sv.isMaintenance ? 0x0A : 0x06) : 0
        checkPort = sv.checkPort ?? (sv.checked ? port : 0)
    }

    static func lines(from snap: StatsSnapshot, backend: String?) -> [ServerStateLine] {
        snap.proxies.filter { $0.backend != nil && (backend == nil || $0.name == backend) }
            .flatMap { px in px.servers.map { ServerStateLine(proxy: px, server: $0) } }
    }
}

struct RuntimeCLI: Sendable {
    let admin: any RuntimeAdmin
    /// `stats socket ... level user|operator|admin`: changing servers needs `admin`, as in HAProxy.
    var level = "admin"

    /// Per-connection state.
    struct Session: Sendable, Equatable {
        var interactive = false
        /// Set by `quit`, or after a line in non-interactive mode: the connection should close.
        var finished = false
    }

    /// Runs every command of one input line and returns the whole reply.
    func execute(line: String, session: inout Session) -> String {
        var out = ""
        for cmd in RuntimeCommand.parseLine(line) {
            out += run(cmd, session: &session)
            if session.finished { return out }
        }
        if session.interactive {
            out += "> "
        } else {
            session.finished = true
        }
        return out
    }

    /// One command's reply, ending with an empty line (`quit` and `prompt` reply nothing).
    func run(_ cmd: RuntimeCommand, session: inout Session) -> String {
        switch cmd {
        case .disableServer, .enableServer, .setServerState, .setWeight, .shutdownSessions, .clearCounters(all: true):
            if level != "admin" { return "Permission denied\n\n" }
        case .clearCounters(all: false):
            // HAProxy: clearing the max values needs `operator`, everything needs `admin`.
            if level == "user" { return "Permission denied\n\n" }
        default:
            break
        }
        switch cmd {
        case .quit:
            session.finished = true
            return ""
        case .prompt:
            session.interactive.toggle()
            return session.interactive ? "" : "\n"
        case .help:
            return RuntimeCommand.helpText + "\n"
        case .unknown(let words):
            return "Unknown command: '\(words)'\n\n" + RuntimeCommand.helpText + "\n"
        case .usage(let text):
            return text + "\n\n"
        case .showInfo:
            return showInfo(admin.snapshot()) + "\n"
        case .showStat(let json, let filter):
            let snap = admin.snapshot()
            return (json ? StatsJSON.render(snap, filter: filter) : StatsCSV.render(snap, filter: filter)) + "\n"
        case .showServersState(let backend):
            if let backend {
                guard let px = resolveBackend(backend, in: admin.snapshot()) else { return "Can't find backend.\n\n" }
                return serversState(px.name)
            }
            return serversState(nil)
        case .clearCounters(let all):
            admin.clearCounters(all: all)
            return "\n"
        case .disableServer(let b, let s):
            return setAdmin(b, s, .maint)
        case .enableServer(let b, let s):
            return setAdmin(b, s, .ready)
        case .setServerState(let b, let s, let st):
            return setAdmin(b, s, st)
        case .setWeight(let b, let s, let w):
            return setWeight(b, s, w)
        case .shutdownSessions(let b, let s):
            switch resolve(b, s) {
            case .failure(let e): return e.text + "\n"
            case .success(let (px, sv)):
                if let err = admin.shutdownSessions(backend: px.name, server: sv.name) { return err + "\n\n" }
                return "\n"
            }
        case .getWeight(let b, let s):
            switch resolve(b, s) {
            case .failure(let e): return e.text + "\n"
            case .success(let (_, sv)): return "\(sv.userWeight) (initial \(sv.effectiveInitialWeight))\n\n"
            }
        }
    }

    // MARK: - Commands

    private func serversState(_ backend: String?) -> String {
        var out = "1\n\(ServerStateLine.header)\n"
        for l in admin.serversState(backend: backend) { out += l.text + "\n" }
        return out + "\n"
    }

    private func setAdmin(_ b: String, _ s: String, _ st: ServerAdminState) -> String {
        switch resolve(b, s) {
        case .failure(let e): return e.text + "\n"
        case .success(let (px, sv)):
            if let err = admin.setServerAdmin(backend: px.name, server: sv.name, state: st) { return err + "\n\n" }
            return "\n"
        }
    }

    private func setWeight(_ b: String, _ s: String, _ spec: String) -> String {
        switch resolve(b, s) {
        case .failure(let e): return e.text + "\n"
        case .success(let (px, sv)):
            let w: Int
            if spec.hasSuffix("%") {
                guard let pct = Int(spec.dropLast()) else { return "Require <weight> or <weight%>.\n\n" }
                guard (0...100).contains(pct) else { return "Relative weight can only be set between 0 and 100% inclusive.\n\n" }
                w = sv.effectiveInitialWeight * pct / 100
            } else {
                guard let v = Int(spec) else { return "Require <weight> or <weight%>.\n\n" }
                guard (0...256).contains(v) else { return "Absolute weight can only be between 0 and 256 inclusive.\n\n" }
                w = v
            }
            if let err = admin.setServerWeight(backend: px.name, server: sv.name, weight: w) { return err + "\n\n" }
            return "\n"
        }
    }

    private func showInfo(_ s: StatsSnapshot) -> String {
        let i = s.info
        let lines: [(String, String)] = [
            ("Name", "gproxy"), ("Version", s.version), ("Nbthread", "\(i.nbthread)"), ("Nbproc", "1"),
            ("Process_num", "1"), ("Pid", "\(s.pid)"), ("Uptime", StatsHTML.uptime(s.uptimeSeconds)),
            ("Uptime_sec", "\(s.uptimeSeconds)"), ("Maxconn", "\(i.maxconn)"), ("CurrConns", "\(i.currentConnections)"),
            ("CumConns", "\(i.cumulativeConnections)"), ("Maxpipes", "\(i.maxpipes)"), ("PipesUsed", "\(i.pipesUsed)"),
            ("PipesFree", "\(i.pipesFree)"), ("node", s.nodeName),
        ] + (s.virtualAddresses.isEmpty ? [] : [
            // gproxy's own fields (global `vip`): the configured addresses, and those on this host now.
            ("Vips", s.virtualAddresses.map(\.address).joined(separator: " ")),
            ("VipsHeld", s.virtualAddresses.filter(\.held).map(\.address).joined(separator: " ")),
        ])
        return lines.map { "\($0.0): \($0.1)\n" }.joined()
    }

    // MARK: - Name resolution

    struct LookupError: Error {
        var text: String
    }

    /// A backend by name or `#<id>`; frontends-only sections do not count.
    private func resolveBackend(_ name: String, in snap: StatsSnapshot) -> ProxyStats? {
        let byId = name.hasPrefix("#") ? Int(name.dropFirst()) : nil
        return snap.proxies.first { $0.backend != nil && (byId != nil ? $0.id == byId : $0.name == name) }
    }

    private func resolve(_ b: String, _ s: String) -> Result<(ProxyStats, ServerStats), LookupError> {
        let snap = admin.snapshot()
        guard let px = resolveBackend(b, in: snap) else { return .failure(LookupError(text: "No such backend.\n")) }
        let byId = s.hasPrefix("#") ? Int(s.dropFirst()) : nil
        guard let sv = px.servers.first(where: { byId != nil ? $0.id == byId : $0.name == s }) else {
            return .failure(LookupError(text: "No such server.\n"))
        }
        return .success((px, sv))
    }
}
