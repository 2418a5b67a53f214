/// Facts derived from a server's status string and admin state, shared by the HTML colours
/// (§9.4), the Prometheus `state` label, the `;up`/`;no-maint` filters and `show servers state`.
/// The status string is the single source of truth the health checker fills (§9.3).
extension ServerStats {
    /// Any `MAINT*` status, or forced maintenance by the admin.
    var isMaintenance: Bool { adminState == .maint || status.hasPrefix("MAINT") }

    var isDraining: Bool { adminState == .drain || status.hasPrefix("DRAIN") }

    /// Stopped: `DOWN`, `DOWN a/b` (going up), `DOWN (agent)`, or maintenance.
    var isDown: Bool { status.hasPrefix("DOWN") || isMaintenance }

    /// Weight given when the CLI did not say otherwise (`get weight` prints "W (initial I)").
    var effectiveInitialWeight: Int { initialWeight ?? userWeight }

    /// `srv_op_state` of `show servers state`: 0 stopped, 1 starting, 2 running, 3 stopping.
    var operationalState: Int {
        if isDown { return 0 }
        if status.hasPrefix("NOLB") { return 3 }
        return 2
    }

    /// `srv_admin_state` bitmask: 0x01 forced MAINT (runtime), 0x04 MAINT from the config
    /// (`disabled`), 0x08 forced DRAIN.
    var adminStateBits: Int {
        switch adminState {
        case .ready: 0
        case .drain: 0x08
        case .maint: configDisabled ? 0x04 : 0x01
        }
    }

    /// `srv_check_result`: 0 unknown, 2 failed, 3 passed.
    var checkResult: Int {
        guard checked, let s = checkStatus else { return 0 }
        switch s {
        case .l4ok, .l7ok: return 3
        case .unknown, .initializing: return 0
        default: return 2
        }
    }

    /// The promex `state` label value: DOWN, UP, MAINT, DRAIN or NOLB.
    var promexState: String {
        if isMaintenance { return "MAINT" }
        if isDraining { return "DRAIN" }
        if isDown { return "DOWN" }
        if status.hasPrefix("NOLB") { return "NOLB" }
        return "UP"
    }

    /// The stats page row class (§9.4): `maintain`, or `active_<style>` / `backup_<style>`.
    var htmlRowClass: String {
        if isMaintenance { return "maintain" }
        let style: String
        if status == "no check" {
            style = "no_check"
        } else if status.hasPrefix("DRAIN") || adminState == .drain {
            style = "draining"
        } else if status.hasPrefix("DOWN") {
            // "DOWN a/b" is recovering; plain "DOWN" and "DOWN (agent)" are down.
            style = status.contains("/") ? "going_up" : "down"
        } else if status.hasPrefix("NOLB") {
            style = status.contains("/") ? "going_down" : "nolb"
        } else if status.hasPrefix("UP"), status.contains("/") {
            style = "going_down"
        } else if weight == 0 {
            // HAProxy shows an UP server with no weight as draining.
            style = "draining"
        } else {
            style = "up"
        }
        return (backup ? "backup_" : "active_") + style
    }

    /// Splits `address` ("ip:port", IPv6 in brackets) into its parts; port 0 when absent.
    var addressParts: (host: String, port: Int) {
        var a = Substring(address)
        if a.hasPrefix("[") {
            guard let close = a.firstIndex(of: "]") else { return (address, 0) }
            let host = a[a.index(after: a.startIndex)..<close]
            a = a[a.index(after: close)...]
            let port = a.hasPrefix(":") ? Int(a.dropFirst()) ?? 0 : 0
            return (String(host), port)
        }
        guard let colon = a.lastIndex(of: ":") else { return (address, 0) }
        return (String(a[..<colon]), Int(a[a.index(after: colon)...]) ?? 0)
    }
}
