/// `/metrics` in the Prometheus text format 0.0.4, named like HAProxy's promex exporter
/// (`addons/promex`) so existing dashboards and alerts keep working: `haproxy_frontend_*`,
/// `haproxy_backend_*`, `haproxy_server_*` with labels `proxy` and `server`, and promex's `state`
/// label on the status families (one sample per possible state, 1 for the current one).
/// Figures HAProxy has no metric for are named `gproxy_*`.
enum StatsPrometheus {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// promex's state sets (`promex_front_st`, `promex_back_st`, `promex_srv_st`).
    static let frontendStates = ["DOWN", "UP"]
    static let backendStates = ["DOWN", "UP"]
    static let serverStates = ["DOWN", "UP", "MAINT", "DRAIN", "NOLB"]

    /// One metric family: every sample is written under one HELP/TYPE pair.
    private struct Family {
        var name: String
        var help: String
        var type: String
        var samples: [(labels: [(String, String)], value: String)] = []
    }

    static func render(_ snap: StatsSnapshot) -> String {
        var families: [String: Family] = [:]
        var order: [String] = []
        func add(_ name: String, _ type: String, _ help: String, _ labels: [(String, String)], _ value: String) {
            if families[name] == nil {
                families[name] = Family(name: name, help: help, type: type)
                order.append(name)
            }
            families[name]!.samples.append((labels, value))
        }
        func g(_ n: String, _ h: String, _ l: [(String, String)], _ v: some BinaryInteger) {
            add(n, "gauge", h, l, String(v))
        }
        func c(_ n: String, _ h: String, _ l: [(String, String)], _ v: some BinaryInteger) {
            add(n, "counter", h, l, String(v))
        }

        /// The queue, session, byte, error and weight families backends and servers share, in promex's order.
        func sessionFamilies(_ kind: String, _ l: [(String, String)], _ k: RowCounters, queueLimit: Int?, weight: Int) {
            let p = "haproxy_\(kind)_"
            g(p + "current_queue", "Number of current queued connections.", l, k.qcur ?? 0)
            g(p + "max_queue", "Maximum observed number of queued connections.", l, k.qmax ?? 0)
            if let ql = queueLimit { g(p + "queue_limit", "Configured maxqueue for the server (0 meaning no limit).", l, ql) }
            g(p + "current_sessions", "Number of current sessions.", l, k.scur)
            g(p + "max_sessions", "Maximum observed number of sessions.", l, k.smax)
            if let lim = k.slim { g(p + "limit_sessions", "Configured session limit.", l, lim) }
            c(p + "sessions_total", "Total number of sessions.", l, k.stot)
            g(p + "current_session_rate", "Current number of sessions per second over last elapsed second.", l, k.rate)
            g(p + "max_session_rate", "Maximum observed number of sessions per second.", l, k.rateMax)
            g(p + "last_session_seconds", "Number of seconds since last session assigned to server/backend.", l, k.lastsess ?? -1)
            c(p + "bytes_in_total", "Current total of incoming bytes.", l, k.bin)
            c(p + "bytes_out_total", "Current total of outgoing bytes.", l, k.bout)
            c(p + "connection_errors_total", "Total number of connection errors.", l, k.econ ?? 0)
            c(p + "response_errors_total", "Total number of response errors.", l, k.eresp ?? 0)
            c(p + "retry_warnings_total", "Total number of retry warnings.", l, k.wretr ?? 0)
            c(p + "redispatch_warnings_total", "Total number of redispatch warnings.", l, k.wredis ?? 0)
            c(p + "client_aborts_total", "Total number of data transfers aborted by the client.", l, k.cliAbrt ?? 0)
            c(p + "server_aborts_total", "Total number of data transfers aborted by the server.", l, k.srvAbrt ?? 0)
            g(p + "weight", "Service weight.", l, weight)
        }

        g("haproxy_process_current_connections", "Number of active sessions.", [], snap.info.currentConnections)
        c("haproxy_process_connections_total", "Total number of created sessions.", [], snap.info.cumulativeConnections)
        g("haproxy_process_uptime_seconds", "How long ago this process was started.", [], snap.uptimeSeconds)
        for v in snap.virtualAddresses {
            g("gproxy_vip_held", "1 if this host holds the virtual address (global `vip`), else 0.", [("address", v.address)], v.held ? 1 : 0)
        }

        for px in snap.proxies {
            let pl = [("proxy", px.name)]
            if let fe = px.frontend {
                let k = fe.counters
                let up = fe.status == "OPEN" ? "UP" : "DOWN"
                for st in frontendStates {
                    g("haproxy_frontend_status", "Current status of the service.", pl + [("state", st)], st == up ? 1 : 0)
                }
                g("haproxy_frontend_current_sessions", "Number of current sessions.", pl, k.scur)
                g("haproxy_frontend_max_sessions", "Maximum observed number of sessions.", pl, k.smax)
                if let lim = k.slim { g("haproxy_frontend_limit_sessions", "Configured session limit.", pl, lim) }
                c("haproxy_frontend_sessions_total", "Total number of sessions.", pl, k.stot)
                c("haproxy_frontend_connections_total", "Total number of new connections.", pl, k.stot)
                g("haproxy_frontend_current_session_rate", "Current number of sessions per second over last elapsed second.", pl, k.rate)
                g("haproxy_frontend_max_session_rate", "Maximum observed number of sessions per second.", pl, k.rateMax)
                c("haproxy_frontend_bytes_in_total", "Current total of incoming bytes.", pl, k.bin)
                c("haproxy_frontend_bytes_out_total", "Current total of outgoing bytes.", pl, k.bout)
                c("haproxy_frontend_requests_denied_total", "Total number of denied requests.", pl, k.dreq ?? 0)
                c("haproxy_frontend_request_errors_total", "Total number of request errors.", pl, k.ereq ?? 0)
            }
            if let be = px.backend {
                let k = be.counters
                for st in backendStates {
                    g("haproxy_backend_status", "Current status of the service.", pl + [("state", st)], st == be.status ? 1 : 0)
                }
                sessionFamilies("backend", pl, k, queueLimit: nil, weight: be.weight)
                g("haproxy_backend_active_servers", "Current number of active servers.", pl, be.activeServers)
                g("haproxy_backend_backup_servers", "Current number of backup servers.", pl, be.backupServers)
                c("haproxy_backend_check_up_down_total", "Total number of UP->DOWN transitions.", pl, be.downTransitions)
                g("haproxy_backend_check_last_change_seconds", "How long ago the last server state changed, in seconds.", pl, be.lastChangeSeconds)
                c("haproxy_backend_downtime_seconds_total", "Total downtime (in seconds) for the service.", pl, be.downtimeSeconds)
                c("haproxy_backend_loadbalanced_total", "Total number of times a service was selected, either for new sessions, or when redispatching.", pl, k.lbtot ?? 0)
            }
            for sv in px.servers {
                let sl = [("proxy", px.name), ("server", sv.name)]
                let k = sv.counters
                let state = sv.promexState
                for st in serverStates {
                    g("haproxy_server_status", "Current status of the service, per state label value.", sl + [("state", st)], st == state ? 1 : 0)
                }
                sessionFamilies("server", sl, k, queueLimit: k.qlimit, weight: sv.weight)
                c("haproxy_server_check_failures_total", "Total number of failed check (Only counts checks failed when the server is up).", sl, sv.checkFailures)
                c("haproxy_server_check_up_down_total", "Total number of UP->DOWN transitions.", sl, sv.downTransitions)
                g("haproxy_server_check_last_change_seconds", "How long ago the last server state changed, in seconds.", sl, sv.lastChangeSeconds)
                c("haproxy_server_downtime_seconds_total", "Total downtime (in seconds) for the service.", sl, sv.downtimeSeconds)
                c("haproxy_server_loadbalanced_total", "Total number of times a service was selected, either for new sessions, or when redispatching.", sl, k.lbtot ?? 0)
                if sv.checked {
                    if let code = sv.checkCode { g("haproxy_server_check_code", "layer5-7 code, if available of the last health check.", sl, code) }
                    if let ms = sv.checkDurationMs {
                        add("haproxy_server_check_duration_seconds", "gauge", "Total duration of the latest server health check, in seconds.", sl, seconds(ms))
                    }
                    add("gproxy_server_check_rate", "gauge", "Health checks sent to the server per second over the last 10 seconds.", sl, decimal(sv.checkRate))
                }
            }
        }

        var out = ""
        for name in order {
            let f = families[name]!
            out += "# HELP \(f.name) \(escapeHelp(f.help))\n# TYPE \(f.name) \(f.type)\n"
            for s in f.samples {
                out += f.name
                if !s.labels.isEmpty {
                    out += "{" + s.labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
                }
                out += " \(s.value)\n"
            }
        }
        return out
    }

    /// Label values escape backslash, double quote and line feed (exposition format 0.0.4).
    static func escapeLabel(_ s: String) -> String {
        var o = ""
        for ch in s {
            switch ch {
            case "\\": o += "\\\\"
            case "\"": o += "\\\""
            case "\n": o += "\\n"
            default: o.append(ch)
            }
        }
        return o
    }

    /// HELP text escapes only backslash and line feed.
    static func escapeHelp(_ s: String) -> String {
        s.replacing("\\", with: "\\\\").replacing("\n", with: "\\n")
    }

    /// Milliseconds as seconds with three decimals, without Foundation's formatter.
    static func seconds(_ ms: Int) -> String {
        let v = max(0, ms)
        let frac = String(v % 1000)
        return "\(v / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }

    /// A non-negative rate with three decimals.
    static func decimal(_ d: Double) -> String {
        guard d.isFinite, d > 0 else { return "0" }
        return seconds(Int((d * 1000).rounded()))
    }
}
