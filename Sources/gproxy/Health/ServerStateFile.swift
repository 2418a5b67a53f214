import Foundation
import Splicer

/// HAProxy's server-state file, version 1: what `show servers state` prints and what
/// `load-server-state-from-file` reads at start-up (haproxy's server_state.c), so a new process
/// resumes each server's health, maintenance and weight instead of starting every server UP.
///
/// Applied per server matched by backend and server name, and only when its address and port are
/// still the configured ones (a server pointed elsewhere is a different node):
/// - `srv_op_state` 0 (stopped) starts a checked server DOWN; 1-3 start it UP with the saved health;
///   servers without checks and Patroni-aware ones (which confirm with the cluster itself) keep
///   their own start state;
/// - `srv_admin_state` bit 0x01 (forced maintenance) and 0x08 (forced drain) are kept; maintenance
///   from a `disabled` line (0x04) follows the new config instead;
/// - `srv_uweight` is kept when `srv_iweight` still equals the configured weight.
/// Malformed lines are skipped, as HAProxy does (with a warning).
struct ServerStateFile: Equatable {
    struct Entry: Equatable {
        var backend: String
        var server: String
        var address: String
        var opState: Int
        var adminBits: Int
        var userWeight: Int
        var initialWeight: Int
        var checkHealth: Int
        var port: Int
    }

    var entries: [Entry] = []
    /// 1-based line numbers of the lines that could not be read.
    var skippedLines: [Int] = []

    /// Parses the text; a first line other than "1" (the format version) yields no entries.
    static func parse(_ text: String) -> ServerStateFile {
        var file = ServerStateFile()
        var sawVersion = false
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if !sawVersion {
                guard line == "1" else { file.skippedLines.append(i + 1); return file }
                sawVersion = true
                continue
            }
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            // be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight
            // srv_time_since_last_change srv_check_status srv_check_result srv_check_health ... srv_port (19th)
            let numbers = f.count >= 13 ? [f[5], f[6], f[7], f[8], f[12]].compactMap { Int($0) } : []
            guard numbers.count == 5, (0...3).contains(numbers[0]) else {
                file.skippedLines.append(i + 1)
                continue
            }
            let port = f.count > 18 ? Int(f[18]) ?? 0 : 0
            file.entries.append(Entry(backend: f[1], server: f[3], address: f[4], opState: numbers[0],
                                      adminBits: numbers[1], userWeight: numbers[2], initialWeight: numbers[3],
                                      checkHealth: numbers[4], port: port))
        }
        return file
    }

    /// Applies the entries for `backendName` to its servers; `addresses[s]` is where server `s`
    /// sends traffic per the new config. Returns the names of the servers that took a saved state.
    @discardableResult
    func apply(to servers: [ServerHealth], backendName: String, addresses: [SocketAddress?],
               now: UInt64) -> [String] {
        var applied: [String] = []
        for (s, h) in servers.enumerated() where h.present {
            guard let e = entries.last(where: { $0.backend == backendName && $0.server == h.name }) else { continue }
            // Same node? The saved address must parse to the configured one (port when saved).
            guard s < addresses.count, let configured = addresses[s],
                  let saved = SocketAddress(ip: e.address.trimmingCharacters(in: CharacterSet(charactersIn: "[]")),
                                            port: e.port == 0 ? configured.port : UInt16(clamping: e.port)),
                  saved == configured else { continue }
            if h.checked && h.patroni == nil {
                if e.opState == 0 {
                    h.state.force(running: false, health: 0)
                    h.downSinceMs = now
                } else {
                    h.state.force(running: true, health: max(h.state.rise, e.checkHealth))
                    h.downSinceMs = nil
                }
            }
            if e.adminBits & 0x01 != 0 {
                h.state.admin = .maint
            } else if e.adminBits & 0x08 != 0, h.state.admin == .ready {
                h.state.admin = .drain
            }
            if e.initialWeight == h.initialWeight { h.userWeight = max(0, min(256, e.userWeight)) }
            applied.append(h.name)
        }
        return applied
    }

    /// The file `load-server-state-from-file` reads for a backend (haproxy's srv_state_get_filepath):
    /// `global` → `server-state-file`, `local` → `server-state-file-name` or the backend's name; a
    /// relative name is under `server-state-base`. Nil when there is nothing to read.
    static func path(load: ServerStateLoad?, fileName: String?, backend: String, global: GlobalSettings) -> String? {
        let name: String
        switch load {
        case .global?:
            guard let f = global.serverStateFile else { return nil }
            name = f
        case .local?:
            name = fileName ?? backend
        case .none?, nil:
            return nil
        }
        if name.hasPrefix("/") { return name }
        guard let base = global.serverStateBase else { return name }
        return base.hasSuffix("/") ? base + name : base + "/" + name
    }
}
