import Splicer

/// The parsed configuration: plain values, no sockets, so it can be built in tests and compared.
///
/// `ConfigParser` fills it from haproxy.cfg-style text with HAProxy 2.6's rules (defaults inheritance,
/// default-server merged under each server line, time units). `EngineBuilder` turns it into the
/// engine's runtime description. Times are milliseconds; `nil` means "unset", which HAProxy reads
/// as infinite.
struct GProxyConfig: Equatable, Sendable {
    var global = GlobalSettings()
    /// Every frontend, backend and listen section, in declaration order.
    var proxies: [ProxyConfig] = []
    /// Non-fatal findings (HAProxy prints these as warnings under `-c` and still exits 0).
    var warnings: [ConfigDiagnostic] = []

    func proxy(named name: String) -> ProxyConfig? { proxies.first { $0.name == name } }
}

/// Where a diagnostic points: `file:line: message`.
struct ConfigDiagnostic: Error, Equatable, Sendable, CustomStringConvertible {
    var file: String
    var line: Int
    var message: String
    var description: String { line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)" }
}

/// All fatal diagnostics found in one parse (parsing continues after an error, as HAProxy does).
struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    var errors: [ConfigDiagnostic]
    var description: String { errors.map(\.description).joined(separator: "\n") }
}

struct GlobalSettings: Equatable, Sendable {
    /// `maxconn`; nil = automatic (derived from the fd limit at start-up).
    var maxconn: Int?
    /// `nbthread`; nil = number of cores.
    var nbthread: Int?
    var logTargets: [LogTarget] = []
    var pidfile: String?
    var daemon = false
    var statsSockets: [StatsSocketConfig] = []
    /// `spread-checks` percentage (0...50).
    var spreadChecks = 0
    /// `tune.pipesize`: bytes per relay pipe; nil = gproxy's default.
    var pipeSize: Int?
    /// `maxpipes`: process-wide cap on relay pipes in use; nil = no cap.
    var maxpipes: Int?
    /// `server-state-file` and `server-state-base`: where `load-server-state-from-file` reads.
    var serverStateFile: String?
    var serverStateBase: String?
    /// `node`: the name the stats page and `show info` show; nil = the host name.
    var nodeName: String?
    /// `vip` (gproxy extension): virtual addresses whose holder the stats report, canonical form.
    var virtualAddresses: [String] = []
}

/// `load-server-state-from-file global|local|none`.
enum ServerStateLoad: String, Equatable, Sendable { case global, local, none }

struct LogTarget: Equatable, Sendable {
    enum Destination: Equatable, Sendable {
        case stdout
        case stderr
        /// UDP syslog to ip:port (port 514 when omitted).
        case udp(host: String, port: UInt16)
    }
    var destination: Destination
    var facility: String
    /// Maximum level sent (e.g. "info", "notice"); nil = all.
    var level: String?
    /// `format raw|rfc3164|short`; default rfc3164.
    var format: String = "rfc3164"
    /// `len N`: longest line sent, in bytes (HAProxy's default is 1024).
    var maxLength: Int = 1024
}

struct StatsSocketConfig: Equatable, Sendable {
    var path: String
    /// File mode from `mode 600` (octal), if given.
    var mode: UInt32?
    /// `level user|operator|admin`; HAProxy's default is admin for sockets.
    var level: String = "admin"
    var file: String = ""
    var line: Int = 0
}

enum ProxyKind: String, Equatable, Sendable {
    case frontend, backend, listen
    var hasFrontend: Bool { self != .backend }
    var hasBackend: Bool { self != .frontend }
}

enum ProxyMode: String, Equatable, Sendable { case tcp, http }

/// `balance`: the engine's own algorithm type (one definition, spelled as HAProxy's keywords).
typealias BalanceAlgorithm = Splicer.BalanceAlgorithm

/// One listening address after expanding comma lists and port ranges.
struct BindAddress: Equatable, Sendable {
    /// Numeric IP literal ("0.0.0.0" for `*` or empty, "::" for `::`).
    var host: String
    var port: UInt16
    /// `defer-accept` on the bind line: accept a connection only once its first data arrived.
    var deferAccept = false
}

/// The timeouts HAProxy knows, in milliseconds; nil = unset (infinite).
struct ProxyTimeouts: Equatable, Sendable {
    var connect: Int?
    var client: Int?
    var server: Int?
    var queue: Int?
    var check: Int?
    var tunnel: Int?
    var clientFin: Int?
    var serverFin: Int?
}

/// `option httpchk [METHOD] [URI] [VERSION]`.
struct HTTPCheckRequest: Equatable, Sendable {
    var method = "OPTIONS"
    var uri = "/"
    var version = "HTTP/1.0"
    /// The exact bytes sent: `METHOD URI VERSION\r\n\r\n`, no headers (as HAProxy 2.6 does).
    var requestBytes: String { "\(method) \(uri) \(version)\r\n\r\n" }
}

/// One `http-check expect` rule. With no rule, HAProxy accepts 2xx and 3xx.
struct HTTPCheckExpect: Equatable, Sendable {
    enum Matcher: Equatable, Sendable {
        /// `status 200,201,300-310`: inclusive ranges.
        case status([ClosedRange<Int>])
        /// `rstatus REGEX`, matched against the 3-digit code.
        case rstatus(String)
        /// `string S`: the body must contain S; the status is ignored.
        case string(String)
    }
    var matcher: Matcher
    /// `!` before the matcher inverts it.
    var negated = false
}

struct StatsConfig: Equatable, Sendable {
    var enabled = false
    var uri = "/haproxy?stats"
    /// `stats refresh`, ms.
    var refresh: Int?
    var realm = "HAProxy Statistics"
    var auth: [StatsCredential] = []
    var hideVersion = false
    /// `stats admin if TRUE`: the page offers server actions (ready/drain/maint/shutdown) by POST.
    var admin = false
}

struct StatsCredential: Equatable, Sendable {
    var user: String
    var password: String
}

/// Start-up state of a checked server (`init-state`, from HAProxy 3.1; 2.6 behaves as `.haproxyDefault`).
enum InitState: String, Equatable, Sendable {
    /// HAProxy 2.6: UP with health = rise ("UP 1/fall"): the first failed check marks it DOWN.
    case haproxyDefault = "default"
    case fullyUp = "fully-up"
    case up = "up"
    case down = "down"
    case fullyDown = "fully-down"
}

struct ServerConfig: Equatable, Sendable {
    var name: String
    /// Host as written (IP literal or name).
    var host: String
    /// The numeric IP `host` resolved to when the configuration was read (once per name, by `-c` and at
    /// start-up alike, as HAProxy's `init-addr libc`); nil only for servers not read from a file.
    var address: String?
    /// 0 = the port the client connected to.
    var port: UInt16
    var file: String = ""
    var line: Int = 0
    var check = false
    var checkPort: UInt16?
    var checkAddr: String?
    var inter = 2000
    var fastinter: Int?
    var downinter: Int?
    var rise = 2
    var fall = 3
    var weight = 1
    /// 0 = unlimited.
    var maxconn = 0
    /// 0 = unlimited.
    var maxqueue = 0
    var backup = false
    var disabled = false
    /// `on-marked-down shutdown-sessions`.
    var shutdownSessionsOnDown = false
    /// `on-marked-up shutdown-backup-sessions`.
    var shutdownBackupSessionsOnUp = false
    var initState: InitState = .haproxyDefault
    /// `id N`; nil = position in the backend, from 1.
    var id: Int?
}

struct ProxyConfig: Equatable, Sendable {
    var name: String
    var kind: ProxyKind
    var file: String = ""
    var line: Int = 0
    var mode: ProxyMode = .tcp
    var binds: [BindAddress] = []
    /// Frontend `maxconn`; nil = the global one.
    var maxconn: Int?
    var timeouts = ProxyTimeouts()
    var retries = 3
    var redispatch = false
    var spliceRequest = false
    var spliceResponse = false
    var tcplog = false
    var httplog = false
    var logGlobal = false
    var logHealthChecks = false
    var allBackups = false
    var logTargets: [LogTarget] = []
    var defaultBackend: String?
    /// Unconditional `use_backend NAME` lines (the first one wins, before default_backend).
    var useBackends: [String] = []
    var balance: BalanceAlgorithm = .roundrobin
    /// `option httpchk ...`; nil = TCP connect checks.
    var httpCheck: HTTPCheckRequest?
    var httpCheckExpects: [HTTPCheckExpect] = []
    var servers: [ServerConfig] = []
    var stats = StatsConfig()
    /// `monitor-uri`, `monitor fail` and their `acl`s (see `MonitorConfig`).
    var monitor = MonitorConfig()
    /// gproxy's opt-in Patroni-aware routing (`patroni primary|replica ...`); nil = HAProxy semantics.
    var patroni: PatroniPolicy?
    /// `load-server-state-from-file`; nil = not set (HAProxy: none; a reload still carries state).
    var loadServerState: ServerStateLoad?
    /// `server-state-file-name`: the `local` file; nil = the backend's name.
    var serverStateFileName: String?

    /// The backend a frontend's connections go to (itself for a listen section).
    var targetBackendName: String? {
        if let first = useBackends.first { return first }
        if let d = defaultBackend { return d }
        return kind == .listen ? name : nil
    }
}

/// `patroni primary [fast-inter T] [discover [max-members N]]` / `patroni replica [max-lag SIZE]
/// [fallback-to-leader] [fast-inter T] [discover [max-members N]]`: the backend follows the Patroni cluster's own view instead of counting rise/fall.
struct PatroniPolicy: Equatable, Sendable {
    enum Role: String, Equatable, Sendable { case primary, replica }
    var role: Role
    /// Replica lag limit in bytes (`/replica?lag=`), nil = none.
    var maxLagBytes: Int?
    /// Replica backends: route to the leader when no replica is eligible.
    var fallbackToLeader = false
    /// Check interval while the cluster is changing (no writer known, or answers disagree).
    var fastInterMs = 200
    /// `discover [max-members N]`: members come from the cluster's `/cluster`, asked of the configured
    /// servers' APIs; new ones join the backend (built from the default-server), gone ones leave.
    var discover = false
    var maxMembers = 16
    /// The default-server settings discovered members are built from.
    var template: ServerConfig?
    var file = ""
    var line = 0
}
