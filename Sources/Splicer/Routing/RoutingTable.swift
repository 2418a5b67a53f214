import Atomics

/// What the health checker (or the runtime socket) says about one server right now.
public struct ServerRuntimeState: Sendable, Equatable {
    /// Running (UP by checks, or not checked) and not in maintenance.
    public var running: Bool
    /// Effective weight; 0 = drain (keeps its sessions, gets no new ones).
    public var weight: Int
    /// Bumped whenever this server's established sessions must be cut
    /// (on-marked-down shutdown-sessions, maintenance, shutdown-backup-sessions, admin kill).
    public var shutdownEpoch: UInt32
    /// Why the last cut happened: the first letter of the session log's termination state.
    public var shutdownReason: UInt8
    /// Where the server is now, when it differs from the spec (members discovered at run time).
    public var address: SocketAddress?

    public init(running: Bool, weight: Int, shutdownEpoch: UInt32 = 0, shutdownReason: UInt8 = UInt8(ascii: "D"),
                address: SocketAddress? = nil) {
        self.running = running
        self.weight = weight
        self.shutdownEpoch = shutdownEpoch
        self.shutdownReason = shutdownReason
        self.address = address
    }
}

/// One backend's view in a routing table.
public struct BackendRoute: Sendable {
    /// Per server (by index): may it take new sessions in this table?
    public let eligible: [Bool]
    public let weights: [Int]
    public let shutdownEpochs: [UInt32]
    public let shutdownReasons: [UInt8]
    /// Per server: where to connect (the spec's address unless the state overrides it).
    public let addresses: [SocketAddress]
    /// Eligible servers in declaration order.
    public let eligibleServers: [Int32]
    /// Round-robin schedule over the eligible servers: each appears `weight` times, interleaved.
    public let schedule: [Int32]
    public let totalWeight: Int
    /// True when only backup servers are eligible.
    public let onBackup: Bool
}

/// An immutable snapshot of where new sessions may go. The checker builds a new one on every state
/// change and publishes it with one atomic store; workers read it without a lock.
public final class RoutingTable: Sendable, AtomicReference {
    public let generation: UInt64
    public let backends: [BackendRoute]
    /// Sum of all shutdown epochs: a worker rescans its sessions only when this moves.
    public let shutdownSum: UInt64

    public init(generation: UInt64, spec: EngineSpec, states: [[ServerRuntimeState]]) {
        self.generation = generation
        var sum: UInt64 = 0
        var routes: [BackendRoute] = []
        for (b, backend) in spec.backends.enumerated() {
            let st = states[b]
            for s in st { sum &+= UInt64(s.shutdownEpoch) }
            routes.append(RoutingTable.route(backend, st))
        }
        backends = routes
        shutdownSum = sum
    }

    /// Every configured server eligible, as before any check has run.
    public static func allUp(spec: EngineSpec) -> RoutingTable {
        RoutingTable(generation: 0, spec: spec, states: spec.backends.map { b in
            b.servers.map { ServerRuntimeState(running: true, weight: $0.weight) }
        })
    }

    private static func route(_ backend: BackendSpec, _ states: [ServerRuntimeState]) -> BackendRoute {
        let n = backend.servers.count
        var eligible = [Bool](repeating: false, count: n)
        let active = (0..<n).filter { !backend.servers[$0].backup && states[$0].running && states[$0].weight > 0 }
        var chosen = active
        var onBackup = false
        if active.isEmpty {
            let backups = (0..<n).filter { backend.servers[$0].backup && states[$0].running && states[$0].weight > 0 }
            // HAProxy uses only the first usable backup unless `option allbackups`.
            chosen = backend.allBackups ? backups : Array(backups.prefix(1))
            onBackup = !chosen.isEmpty
        }
        for i in chosen { eligible[i] = true }
        let weights = states.map(\.weight)
        return BackendRoute(
            eligible: eligible, weights: weights, shutdownEpochs: states.map(\.shutdownEpoch),
            shutdownReasons: states.map(\.shutdownReason),
            addresses: states.indices.map { states[$0].address ?? backend.servers[$0].address },
            eligibleServers: chosen.map { Int32($0) },
            schedule: RoutingTable.schedule(chosen, weights),
            totalWeight: chosen.reduce(0) { $0 + weights[$1] }, onBackup: onBackup)
    }

    /// Smooth weighted round-robin: with equal weights this is declaration order, as HAProxy's.
    public static func schedule(_ servers: [Int], _ weights: [Int]) -> [Int32] {
        if servers.isEmpty { return [] }
        let ws = servers.map { weights[$0] }
        if Set(ws).count == 1 { return servers.map { Int32($0) } }
        let total = ws.reduce(0, +)
        var current = [Int](repeating: 0, count: servers.count)
        var out: [Int32] = []
        out.reserveCapacity(total)
        for _ in 0..<total {
            var best = 0
            for i in servers.indices {
                current[i] += ws[i]
                if current[i] > current[best] { best = i }
            }
            current[best] -= total
            out.append(Int32(servers[best]))
        }
        return out
    }
}
