/// A point-in-time copy of everything the stats page, CSV/JSON export, Prometheus metrics and the
/// runtime socket show. Built by `StatsCollector` from the engine's per-worker counters and the
/// health checker's server states; the renderers only read this value, so they can be tested with
/// hand-made snapshots and never touch a lock a worker takes.
struct StatsSnapshot: Sendable, Equatable {
    var pid: Int32
    var version: String
    var nodeName: String
    /// Seconds since the process started.
    var uptimeSeconds: Int
    var proxies: [ProxyStats]
    var info = ProcessInfoStats()
    /// The configured `vip` addresses and whether this host holds each (two nodes behind keepalived).
    var virtualAddresses: [VirtualAddressWatch.Holding] = []
}

/// Process-wide figures for `show info`.
struct ProcessInfoStats: Sendable, Equatable {
    var nbthread = 1
    var maxconn = 0
    var currentConnections = 0
    var cumulativeConnections: UInt64 = 0
    var maxpipes = 0
    var pipesUsed = 0
    var pipesFree = 0
}

/// The counters one CSV row carries. Unused fields stay nil and render as empty CSV cells.
struct RowCounters: Sendable, Equatable {
    var qcur: Int? = nil
    var qmax: Int? = nil
    var qlimit: Int? = nil
    var scur = 0
    var smax = 0
    /// Session limit: frontend maxconn, server maxconn (nil = unlimited), backend fullconn.
    var slim: Int? = nil
    var stot: UInt64 = 0
    /// Bytes client→server.
    var bin: UInt64 = 0
    /// Bytes server→client.
    var bout: UInt64 = 0
    var dreq: UInt64? = nil
    var ereq: UInt64? = nil
    var econ: UInt64? = nil
    var eresp: UInt64? = nil
    var wretr: UInt64? = nil
    var wredis: UInt64? = nil
    var cliAbrt: UInt64? = nil
    var srvAbrt: UInt64? = nil
    var lbtot: UInt64? = nil
    /// Sessions per second over the last second, and the highest seen.
    var rate = 0
    var rateMax = 0
    /// Seconds since the last session, -1 = never.
    var lastsess: Int? = nil
}

/// HAProxy's check result codes (`check_status`), with their descriptions.
enum CheckStatusCode: String, Sendable, Equatable {
    case unknown = "UNK", initializing = "INI", socketError = "SOCKERR"
    case l4ok = "L4OK", l4timeout = "L4TOUT", l4connect = "L4CON"
    case l7timeout = "L7TOUT", l7response = "L7RSP", l7ok = "L7OK", l7status = "L7STS"

    /// The text HAProxy shows (`check_desc`, and "reason:" in logs).
    var description: String {
        switch self {
        case .unknown: "Unknown"
        case .initializing: "Initializing"
        case .socketError: "Socket error"
        case .l4ok: "Layer4 check passed"
        case .l4timeout: "Layer4 timeout"
        case .l4connect: "Layer4 connection problem"
        case .l7timeout: "Layer7 timeout"
        case .l7response: "Layer7 invalid response"
        case .l7ok: "Layer7 check passed"
        case .l7status: "Layer7 wrong status"
        }
    }

    /// The number `show servers state` prints.
    var number: Int {
        switch self {
        case .unknown: 0
        case .initializing: 1
        case .socketError: 5
        case .l4ok: 6
        case .l4timeout: 7
        case .l4connect: 8
        case .l7timeout: 12
        case .l7response: 13
        case .l7ok: 15
        case .l7status: 17
        }
    }
}

/// Operational state of a server, as the stats page words it.
enum ServerAdminState: String, Sendable, Equatable {
    case ready, drain, maint
}

struct ServerStats: Sendable, Equatable {
    var name: String
    /// Position in its backend from 1 (`sid`).
    var id: Int
    /// "ip:port", IPv6 in brackets.
    var address: String
    var counters = RowCounters()
    /// HAProxy's status string: "UP", "UP 1/3", "DOWN", "DOWN 1/2", "MAINT", "DRAIN", "no check".
    var status: String
    /// Seconds since the last UP/DOWN change (`lastchg`).
    var lastChangeSeconds: Int
    /// Total seconds spent DOWN (`downtime`).
    var downtimeSeconds: Int
    /// Effective weight (`weight`) and the user-set one (`uweight`).
    var weight: Int
    var userWeight: Int
    var backup: Bool
    var checked: Bool
    var checkStatus: CheckStatusCode?
    /// HTTP status of the last L7 check, if any.
    var checkCode: Int?
    /// Duration of the last check in ms.
    var checkDurationMs: Int?
    /// Reason phrase or error text of the last check (`last_chk`), e.g. "Service Unavailable".
    var lastCheckInfo: String
    var checkRise: Int
    var checkFall: Int
    var checkHealth: Int
    var checkFailures: UInt64
    var downTransitions: UInt64
    var adminState: ServerAdminState = .ready
    /// `disabled` on its server line: its maintenance comes from the config, not the runtime API.
    var configDisabled = false
    /// Checks per second sent to this server's health endpoint over the last 10 s.
    var checkRate: Double = 0
    /// Weight from the configuration, before any CLI change (`srv_iweight`, "initial" of
    /// `get weight`); nil = same as `userWeight`.
    var initialWeight: Int? = nil
    /// `port` of the check when it differs from the traffic port (`srv_check_port`).
    var checkPort: Int? = nil
}

struct ProxyStats: Sendable, Equatable {
    var name: String
    /// Proxy id in declaration order from 1 (`iid`).
    var id: Int
    var mode: String
    /// Frontend row, when the section has a frontend part ("OPEN" or "STOP").
    var frontend: FrontendStats?
    var servers: [ServerStats] = []
    /// Backend row, when the section has a backend part.
    var backend: BackendStats?
}

struct FrontendStats: Sendable, Equatable {
    var status: String
    var counters = RowCounters()
}

struct BackendStats: Sendable, Equatable {
    /// "UP", or "DOWN" when servers exist and no usable weight is left.
    var status: String
    var counters = RowCounters()
    /// Sum of usable servers' weights.
    var weight: Int
    /// Usable active / backup servers.
    var activeServers: Int
    var backupServers: Int
    var downTransitions: UInt64
    var lastChangeSeconds: Int
    var downtimeSeconds: Int
    /// `roundrobin`, `static-rr`, ...
    var algorithm: String
}
