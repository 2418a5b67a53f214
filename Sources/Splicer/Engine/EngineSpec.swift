/// The engine's static description: what to listen on, where to relay, with which limits and
/// timeouts. Built once by the program from the parsed config; never changes while running.
/// What does change (server health, weights, maintenance) travels in `RoutingTable`s.
public struct EngineSpec: Sendable {
    /// Worker threads, each with its own epoll loop and its own listening sockets (SO_REUSEPORT).
    public var workers: Int
    /// Process-wide session limit; 0 = unlimited.
    public var globalMaxconn: Int
    public var frontends: [FrontendSpec]
    public var backends: [BackendSpec]
    /// Bytes per relay pipe (F_SETPIPE_SZ); 0 = the kernel's default (64 KiB).
    public var pipeSize: Int
    /// Free pipes each worker keeps for reuse.
    public var pipePoolSize: Int
    /// Pipes in use and pooled, all workers together, capped at `maxpipes` (0 = no cap). Shared by the
    /// engine built from this spec: `engine.spec.pipes.used` / `.free` are `show info`'s PipesUsed /
    /// PipesFree.
    public let pipes: PipeGauge

    public init(workers: Int, globalMaxconn: Int = 0, frontends: [FrontendSpec], backends: [BackendSpec],
                pipeSize: Int = 0, pipePoolSize: Int = 256, maxPipes: Int = 0) {
        pipes = PipeGauge(limit: maxPipes)
        self.workers = max(1, workers)
        self.globalMaxconn = globalMaxconn
        self.frontends = frontends
        self.backends = backends
        self.pipeSize = pipeSize
        self.pipePoolSize = pipePoolSize
    }
}

public struct FrontendSpec: Sendable {
    public var name: String
    public var binds: [SocketAddress]
    /// `bind ... defer-accept`, per entry of `binds` (missing entries: off).
    public var deferAccept: [Bool]
    /// 0 = only the global limit applies.
    public var maxconn: Int
    /// Index into `EngineSpec.backends`.
    public var backend: Int
    /// Idle timeouts in ms; nil = infinite.
    public var clientTimeout: Int?
    public var clientFinTimeout: Int?
    /// Hand every finished session to the session logger (`option tcplog` with a log target).
    public var logSessions: Bool
    /// `option splice-request` / `splice-response`: always splice that direction. Otherwise each flow
    /// starts copying small messages and switches to splice once it carries bulk data.
    public var alwaysSpliceRequest: Bool
    public var alwaysSpliceResponse: Bool

    public init(name: String, binds: [SocketAddress], deferAccept: [Bool] = [], maxconn: Int = 0, backend: Int,
                clientTimeout: Int? = nil, clientFinTimeout: Int? = nil, logSessions: Bool = false,
                alwaysSpliceRequest: Bool = false, alwaysSpliceResponse: Bool = false) {
        self.deferAccept = deferAccept
        self.alwaysSpliceRequest = alwaysSpliceRequest
        self.alwaysSpliceResponse = alwaysSpliceResponse
        self.name = name
        self.binds = binds
        self.maxconn = maxconn
        self.backend = backend
        self.clientTimeout = clientTimeout
        self.clientFinTimeout = clientFinTimeout
        self.logSessions = logSessions
    }

    /// Whether `binds[index]` defers accept.
    public func defersAccept(_ index: Int) -> Bool { index < deferAccept.count && deferAccept[index] }
}

/// `balance` as HAProxy spells it (the config parser reads it by raw value).
public enum BalanceAlgorithm: String, Equatable, Sendable {
    case roundrobin, staticRR = "static-rr", leastconn, first, source
}

public struct BackendSpec: Sendable {
    public var name: String
    public var servers: [ServerSpec]
    public var balance: BalanceAlgorithm
    /// Timeouts in ms; nil = infinite. `queueTimeout` nil falls back to `connectTimeout`.
    public var connectTimeout: Int?
    public var serverTimeout: Int?
    public var queueTimeout: Int?
    public var tunnelTimeout: Int?
    public var serverFinTimeout: Int?
    public var retries: Int
    public var redispatch: Bool
    /// Use every usable backup at once instead of only the first (`option allbackups`).
    public var allBackups: Bool
    /// When no server is usable, wait in the queue (Patroni-aware primary) instead of closing the
    /// client at once (HAProxy's behaviour).
    public var queueWhenNoServer: Bool

    public init(name: String, servers: [ServerSpec], balance: BalanceAlgorithm = .roundrobin,
                connectTimeout: Int? = nil, serverTimeout: Int? = nil, queueTimeout: Int? = nil,
                tunnelTimeout: Int? = nil, serverFinTimeout: Int? = nil, retries: Int = 3, redispatch: Bool = false,
                allBackups: Bool = false, queueWhenNoServer: Bool = false) {
        self.name = name
        self.servers = servers
        self.balance = balance
        self.connectTimeout = connectTimeout
        self.serverTimeout = serverTimeout
        self.queueTimeout = queueTimeout
        self.tunnelTimeout = tunnelTimeout
        self.serverFinTimeout = serverFinTimeout
        self.retries = retries
        self.redispatch = redispatch
        self.allBackups = allBackups
        self.queueWhenNoServer = queueWhenNoServer
    }

    /// `timeout queue`, defaulting to `timeout connect` as HAProxy does.
    var effectiveQueueTimeout: Int? { queueTimeout ?? connectTimeout }
}

public struct ServerSpec: Sendable {
    public var name: String
    /// Port 0 = relay to the port the client connected to.
    public var address: SocketAddress
    /// 0 = unlimited.
    public var maxconn: Int
    /// 0 = unlimited.
    public var maxqueue: Int
    public var weight: Int
    public var backup: Bool

    public init(name: String, address: SocketAddress, maxconn: Int = 0, maxqueue: Int = 0, weight: Int = 1,
                backup: Bool = false) {
        self.name = name
        self.address = address
        self.maxconn = maxconn
        self.maxqueue = maxqueue
        self.weight = weight
        self.backup = backup
    }
}
