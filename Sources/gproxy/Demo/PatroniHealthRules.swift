// Patroni's REST API decisions, as pure functions: request-head parsing, the substring routing of
// health paths, `parse_int` for `?lag=`, and the JSON bodies of the health endpoints and `/cluster`.
//
// The rules follow shared/reference/patroni-api.md §1-§4 (Patroni 4.1.4): the path `/` is read as
// `/primary`, then the first matching substring rule decides; `/primary`-type rules depend only on
// the leader key, replica-type rules on role, state, lag and tags. The simulated cluster is never a
// standby cluster and has no sync or quorum standbys.

import Foundation

/// One parsed HTTP request head (plus body for POST), the way `BaseHTTPRequestHandler` sees it.
struct PatroniRequest: Sendable, Equatable {
    var method: String
    /// The path without the query string.
    var path: String
    /// Query parameters in order; `parse_qs` keeps only non-empty values.
    var query: [(String, String)]
    var version: String
    var headers: [String: String]
    var body: [UInt8] = []

    static func == (a: Self, b: Self) -> Bool {
        a.method == b.method && a.path == b.path && a.version == b.version && a.body == b.body
            && a.query.map { "\($0.0)=\($0.1)" } == b.query.map { "\($0.0)=\($0.1)" } && a.headers == b.headers
    }

    /// First value of a query parameter (Patroni reads `path_query.get(key, [None])[0]`).
    func queryValue(_ key: String) -> String? { query.first { $0.0 == key }?.1 }

    /// Declared body length, 0 when absent or malformed.
    var contentLength: Int { headers["content-length"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? 0 }

    /// Parses the head (request line and headers, without the terminating blank line).
    /// Returns nil when the request line is not `METHOD TARGET HTTP/x.y`.
    static func parse(head: String) -> PatroniRequest? {
        // Split on bytes: as Characters, "\r\n" is one grapheme and would never match "\n".
        let lines = head.utf8.split(separator: 0x0A, omittingEmptySubsequences: false)
            .map { String(decoding: $0.last == 0x0D ? $0.dropLast() : $0, as: UTF8.self) }
        guard let requestLine = lines.first else { return nil }
        let words = requestLine.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count == 3, words[2].hasPrefix("HTTP/") else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let target = String(words[1])
        let (path, rawQuery) = target.firstIndex(of: "?").map { (String(target[..<$0]), String(target[target.index(after: $0)...])) }
            ?? (target, "")
        return PatroniRequest(
            method: String(words[0]), path: path, query: parseQuery(rawQuery), version: String(words[2]),
            headers: headers)
    }

    /// `urllib.parse.parse_qs`: split on `&`, decode `+` and `%XX`, drop blank values.
    static func parseQuery(_ raw: String) -> [(String, String)] {
        raw.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[1].isEmpty else { return nil }
            func decode(_ s: Substring) -> String {
                let plus = s.replacingOccurrences(of: "+", with: " ")
                return plus.removingPercentEncoding ?? plus
            }
            return (decode(parts[0]), decode(parts[1]))
        }
    }
}

/// Patroni's health decisions and JSON documents.
enum PatroniHealthRules {
    /// The Patroni version this simulator imitates (in `patroni.version`).
    static let patroniVersion = "4.1.4"

    /// `parse_int(value, 'B')`: bytes, optionally with a 1024-based unit B/kB/MB/GB/TB
    /// (case-sensitive). Nil when it does not parse — Patroni then applies no lag limit.
    static func parseLag(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let numberEnd = trimmed.firstIndex { !($0.isNumber || $0 == "." || $0 == "-" || $0 == "+") } ?? trimmed.endIndex
        guard let value = Double(trimmed[..<numberEnd]) else { return nil }
        let unit = trimmed[numberEnd...].trimmingCharacters(in: .whitespaces)
        let multipliers: [String: Double] = ["": 1, "B": 1, "kB": 1024, "MB": 1_048_576, "GB": 1_073_741_824, "TB": 1_099_511_627_776]
        guard let m = multipliers[unit] else { return nil }
        return Int((value * m).rounded())
    }

    /// The status code `do_GET`/`do_OPTIONS`/`do_HEAD` give for `path` on this node (§1 order).
    static func status(path rawPath: String, request: PatroniRequest, view: PatroniNodeView) -> Int {
        let path = rawPath == "/" ? "/primary" : rawPath
        let m = view.member
        let running = m.state == .running
        if path.contains("standby_leader") || path.contains("standby-leader") {
            return 503  // never a standby cluster
        }
        if path.contains("leader") { return view.isLeader ? 200 : 503 }
        if path.contains("master") || path.contains("primary") || path.contains("read-write") {
            return view.isLeader ? 200 : 503
        }
        if path.contains("replica") { return replicaOK(request: request, view: view) ? 200 : 503 }
        if path.contains("read-only") && !path.contains("sync") && !path.contains("quorum") {
            return (view.isLeader && tagsMatch(request, m)) || replicaOK(request: request, view: view) ? 200 : 503
        }
        if path.contains("health") { return running ? 200 : 503 }
        switch path {
        case "/async", "/asynchronous": return replicaOK(request: request, view: view) ? 200 : 503
        case "/read-only-sync", "/read-only-synchronous", "/read-only-quorum": return view.isLeader ? 200 : 503
        default: return 503  // includes /sync and /quorum: the simulator has no sync standbys
        }
    }

    /// Patroni's `R`: a running replica, not noloadbalance, within `?lag=`, matching every `tag_`.
    static func replicaOK(request: PatroniRequest, view: PatroniNodeView) -> Bool {
        let m = view.member
        guard view.role == .replica, m.state == .running, !m.noLoadBalance else { return false }
        if let lag = request.queryValue("lag").flatMap(parseLag), m.lagBytes > lag { return false }
        if let wanted = request.queryValue("replication_state"), wanted != "streaming" { return false }
        return tagsMatch(request, m)
    }

    /// Every `tag_<key>=<value>` parameter must name an existing tag with that (lowercased) value.
    static func tagsMatch(_ request: PatroniRequest, _ m: SimulatedMemberInfo) -> Bool {
        request.query.allSatisfy { key, value in
            guard key.hasPrefix("tag_") else { return true }
            return m.tags[String(key.dropFirst(4))] == value
        }
    }

    /// The document GET health endpoints and `/patroni` send (`get_postgresql_status()` + extras).
    static func statusDocument(_ view: PatroniNodeView) -> [String: Any] {
        let m = view.member
        var doc: [String: Any] = [
            "state": m.state.rawValue,
            "role": view.role.rawValue,
            "dcs_last_seen": Int(time(nil)),
            "patroni": ["version": patroniVersion, "scope": view.scope, "name": m.name],
        ]
        if !m.tags.isEmpty { doc["tags"] = m.tags }
        if view.leaderName == nil { doc["cluster_unlocked"] = true }
        // Not running: the monitoring query is skipped, so only state/role are known.
        guard m.state == .running else { return doc }
        doc["postmaster_start_time"] = "2026-01-01 00:00:00.000000+00:00"
        doc["server_version"] = 160004
        doc["timeline"] = view.timeline
        if view.role == .primary {
            doc["xlog"] = ["location": view.leaderLSN]
            let replicas = view.members.filter { $0.name != m.name && $0.state == .running && $0.name != view.leaderName }
            if !replicas.isEmpty {
                doc["replication"] = replicas.map {
                    ["usename": "replicator", "application_name": $0.name, "client_addr": "127.0.0.1",
                     "state": "streaming", "sync_state": "async", "sync_priority": 0] as [String: Any]
                }
            }
        } else {
            let replayed = max(0, view.leaderLSN - m.lagBytes)
            doc["xlog"] = ["received_location": replayed, "replayed_location": replayed,
                           "replayed_timestamp": NSNull(), "paused": false] as [String: Any]
            doc["replication_state"] = "streaming"
        }
        return doc
    }

    /// `/cluster`: members sorted by name, with lag fields on non-leaders only (§4.2).
    static func clusterDocument(_ view: PatroniNodeView) -> [String: Any] {
        let members: [[String: Any]] = view.members.map { m in
            let isLeader = m.name == view.leaderName
            var entry: [String: Any] = [
                "name": m.name,
                "role": isLeader ? "leader" : "replica",
                "state": isLeader || m.state != .running ? m.state.rawValue : "streaming",
                "api_url": "http://127.0.0.1:\(m.apiPort)/patroni",
                "host": "127.0.0.1",
                "port": Int(m.dbPort),
                "timeline": view.timeline,
            ]
            if !m.tags.isEmpty { entry["tags"] = m.tags }
            if !isLeader {
                let position = formatLSN(max(0, view.leaderLSN - m.lagBytes))
                entry["receive_lag"] = m.lagBytes
                entry["receive_lsn"] = position
                entry["replay_lag"] = m.lagBytes
                entry["replay_lsn"] = position
                entry["lag"] = m.lagBytes
                entry["lsn"] = position
            }
            return entry
        }
        return ["members": members, "scope": view.scope]
    }

    /// Postgres LSN text, e.g. `0/4000060`.
    static func formatLSN(_ value: Int) -> String {
        String(value >> 32, radix: 16, uppercase: true) + "/" + String(value & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    /// Serialises a document the way Patroni's `json.dumps` would (key order aside).
    static func json(_ object: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
