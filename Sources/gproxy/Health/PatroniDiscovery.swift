import Foundation
import Splicer

/// Patroni-aware discovery (`patroni ... discover`): the checker asks `GET /cluster` of one member's
/// REST API at a time (rotating over the members it knows), and reconciles the backend with the
/// answer: a new member takes a free slot (DOWN until its own API confirms it), a member that left
/// the cluster leaves the backend and its sessions are cut. Nothing to edit, nothing to reload.
struct ClusterMember: Equatable, Sendable {
    var name: String
    var host: String
    var port: UInt16
    /// host and port of the member's REST API, from `api_url`.
    var apiHost: String
    var apiPort: UInt16

    /// Members of a `/cluster` reply (patroni-api.md §4.2); nil when the body is not one.
    static func parse(_ response: [UInt8]) -> [ClusterMember]? {
        guard let end = HTTPCheckEvaluator.firstIndex(of: [13, 10, 13, 10], in: response),
              let doc = (try? JSONSerialization.jsonObject(with: Data(response[(end + 4)...]))) as? [String: Any],
              let members = doc["members"] as? [[String: Any]]
        else { return nil }
        return members.compactMap { m in
            guard let name = m["name"] as? String, let host = m["host"] as? String,
                  let port = (m["port"] as? NSNumber)?.intValue, let api = m["api_url"] as? String,
                  let url = URLComponents(string: api), let apiHost = url.host
            else { return nil }
            return ClusterMember(name: name, host: host, port: UInt16(clamping: port), apiHost: apiHost,
                                 apiPort: UInt16(clamping: url.port ?? 8008))
        }
    }
}

/// The discovery state of one backend.
struct DiscoveryState {
    var nextMs: UInt64 = 0
    var probe: CheckProbe?
    /// Which known member to ask next.
    var rotation = 0
    var fullWarned = false
    var token: LoopToken?
    static let request = Array("GET /cluster HTTP/1.0\r\n\r\n".utf8)
}

/// Delivers a backend's discovery probe events to the checker.
final class DiscoveryProbeHandler: EventHandler {
    weak var checker: HealthChecker?
    let backend: Int
    init(checker: HealthChecker, backend: Int) {
        self.checker = checker
        self.backend = backend
    }
    override func handle(events: UInt32, tag _: UInt32) { checker?.discoveryEvent(backend, events: events) }
}

extension HealthChecker {
    /// Starts a `/cluster` request when one is due (checker thread).
    func discoverIfDue(_ b: Int, now: UInt64) {
        guard let policy = policies[b], policy.discover, discovery[b].probe == nil, now >= discovery[b].nextMs else { return }
        let known = servers[b].filter { $0.present && $0.checkAddress != nil }
        discovery[b].nextMs = now + UInt64(converging[b] ? policy.fastInterMs : servers[b][0].config.inter)
        guard !known.isEmpty, let target = known[discovery[b].rotation % known.count].checkAddress else { return }
        discovery[b].rotation += 1
        var p = CheckProbe(nowMs: now, connectTimeoutMs: servers[b][0].connectTimeoutMs,
                           totalTimeoutMs: servers[b][0].totalTimeoutMs)
        if case .pending = p.start(address: target, now: now) {
            discovery[b].probe = p
            discovery[b].token = try? loop.register(p.fd, events: Self.probeEvents,
                                                    DiscoveryProbeHandler(checker: self, backend: b))
        }
    }

    /// Socket event or timeout of a discovery probe; true when the backend changed.
    func discoveryProgress(_ b: Int, now: UInt64, events: UInt32 = 0, timedOut: Bool) -> Bool {
        guard var p = discovery[b].probe else { return false }
        if !timedOut, case .pending = p.onEvent(request: DiscoveryState.request, expects: [], readToEnd: true, events: events, now: now) {
            discovery[b].probe = p
            return false
        }
        let members = timedOut ? nil : ClusterMember.parse(p.response)
        closeDiscoveryProbe(b)
        guard let members, !members.isEmpty else { return false }
        return reconcile(b, members, now: now)
    }

    /// Makes the backend's present servers match the cluster's members.
    private func reconcile(_ b: Int, _ members: [ClusterMember], now: UInt64) -> Bool {
        var changed = false
        func matches(_ s: ServerHealth, _ m: ClusterMember) -> Bool {
            if s.name == m.name { return true }
            let addr = s.address ?? engine.spec.backends[b].servers[s.server].address
            return addr.ipAndPort == (EngineBuilder.resolve(m.host) ?? m.host, m.port)
        }
        for s in servers[b] where s.present && !members.contains(where: { matches(s, $0) }) {
            if writer[b] == s.server { writer[b] = nil }
            closeProbe(s)
            s.evict(now: now)
            loggers[b].event(.alert, "Server \(s.backendName)/\(s.name) left the Patroni cluster: removed, its sessions are cut.")
            changed = true
        }
        for m in members where !servers[b].contains(where: { $0.present && matches($0, m) }) {
            guard let ip = EngineBuilder.resolve(m.host), let addr = SocketAddress(ip: ip, port: m.port),
                  let apiIP = EngineBuilder.resolve(m.apiHost), let api = SocketAddress(ip: apiIP, port: m.apiPort)
            else { continue }
            guard let slot = servers[b].first(where: { !$0.present }) else {
                if !discovery[b].fullWarned {
                    loggers[b].event(.warning, "backend \(servers[b][0].backendName): no free slot for Patroni member \(m.name) "
                        + "(raise 'discover max-members').")
                    discovery[b].fullWarned = true
                }
                continue
            }
            slot.admit(name: m.name, address: addr, checkAddress: api, now: now)
            schedule(slot, at: now)
            loggers[b].event(.notice, "Server \(slot.backendName)/\(m.name) joined from Patroni /cluster (\(addr), API \(api)).")
            changed = true
        }
        if changed { converging[b] = true }
        return changed
    }
}
