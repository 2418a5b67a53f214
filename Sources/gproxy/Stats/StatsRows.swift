/// Turns a `StatsSnapshot` into HAProxy's stat rows: per proxy in configuration order the
/// FRONTEND row, one row per server, then the BACKEND row (§9.2). Which cells are filled for which
/// row type follows what HAProxy 2.6.12 emits for a TCP proxy; the rest stay empty.
enum StatsRows {
    /// The `;up` / `;no-maint` URI flags and their `show stat up|no-maint` twins.
    struct Filter: Sendable, Equatable {
        /// Hide servers that are DOWN or in maintenance.
        var upOnly = false
        /// Hide servers in maintenance.
        var noMaint = false

        func hides(_ s: ServerStats) -> Bool {
            (upOnly && s.isDown) || (noMaint && s.isMaintenance)
        }
    }

    static func build(_ snap: StatsSnapshot, filter: Filter = Filter()) -> [StatsRow] {
        var rows: [StatsRow] = []
        for px in snap.proxies {
            if let fe = px.frontend { rows.append(frontendRow(px, fe, pid: snap.pid)) }
            for sv in px.servers where !filter.hides(sv) {
                rows.append(serverRow(px, sv, pid: snap.pid))
            }
            if let be = px.backend { rows.append(backendRow(px, be, pid: snap.pid)) }
        }
        return rows
    }

    // MARK: - Row types

    static func frontendRow(_ px: ProxyStats, _ fe: FrontendStats, pid: Int32) -> StatsRow {
        var r = StatsRow(kind: .frontend, proxyId: px.id, id: 0)
        let c = fe.counters
        common(&r, px, "FRONTEND", pid: pid)
        r["scur"] = .u32(UInt64(c.scur))
        r["smax"] = .u32(UInt64(c.smax))
        r["slim"] = c.slim.map { .u32(UInt64($0)) }
        r["stot"] = .u64(c.stot)
        r["bin"] = .u64(c.bin)
        r["bout"] = .u64(c.bout)
        r["dreq"] = .u64(c.dreq ?? 0)
        r["dresp"] = .u64(0)
        r["ereq"] = .u64(c.ereq ?? 0)
        r["status"] = .str(fe.status)
        r["rate"] = .u32(UInt64(c.rate))
        r["rate_lim"] = nil
        r["rate_max"] = .u32(UInt64(c.rateMax))
        r["conn_rate"] = .u32(UInt64(c.rate))
        r["conn_rate_max"] = .u32(UInt64(c.rateMax))
        r["conn_tot"] = .u64(c.stot)
        for f in ["intercepted", "dcon", "dses", "wrew", "eint"] { r[f] = .u64(0) }
        return r
    }

    static func serverRow(_ px: ProxyStats, _ sv: ServerStats, pid: Int32) -> StatsRow {
        var r = StatsRow(kind: .server, proxyId: px.id, id: sv.id)
        let c = sv.counters
        common(&r, px, sv.name, pid: pid)
        queueAndSessions(&r, c)
        r["slim"] = c.slim.map { .u32(UInt64($0)) }
        r["dresp"] = .u64(0)
        r["status"] = .str(sv.status)
        r["weight"] = .u32(UInt64(max(0, sv.weight)))
        r["act"] = .u32(sv.backup ? 0 : 1)
        r["bck"] = .u32(sv.backup ? 1 : 0)
        r["chkfail"] = sv.checked ? .u64(sv.checkFailures) : nil
        r["chkdown"] = sv.checked ? .u64(sv.downTransitions) : nil
        r["lastchg"] = .u32(UInt64(max(0, sv.lastChangeSeconds)))
        r["downtime"] = sv.checked ? .u32(UInt64(max(0, sv.downtimeSeconds))) : nil
        r["qlimit"] = c.qlimit.map { .u32(UInt64($0)) }
        r["sid"] = .u32(UInt64(sv.id))
        r["lbtot"] = .u64(c.lbtot ?? 0)
        if sv.checked, let st = sv.checkStatus {
            r["check_status"] = .str(st.rawValue)
            r["check_code"] = sv.checkCode.map { .u32(UInt64($0)) }
            r["check_duration"] = sv.checkDurationMs.map { .u64(UInt64(max(0, $0))) }
            r["check_desc"] = .str(st.description)
        }
        r["hanafail"] = .u64(0)
        if sv.checked {
            r["last_chk"] = .str(sv.lastCheckInfo)
            r["check_rise"] = .u32(UInt64(sv.checkRise))
            r["check_fall"] = .u32(UInt64(sv.checkFall))
            r["check_health"] = .u32(UInt64(sv.checkHealth))
        }
        r["addr"] = .str(sv.address)
        r["srv_icur"] = .u32(0)
        r["idle_conn_cur"] = .u32(0)
        r["safe_conn_cur"] = .u32(0)
        r["used_conn_cur"] = .u32(UInt64(c.scur))
        r["need_conn_est"] = .u32(0)
        r["uweight"] = .u32(UInt64(max(0, sv.userWeight)))
        return r
    }

    static func backendRow(_ px: ProxyStats, _ be: BackendStats, pid: Int32) -> StatsRow {
        var r = StatsRow(kind: .backend, proxyId: px.id, id: 0)
        let c = be.counters
        common(&r, px, "BACKEND", pid: pid)
        queueAndSessions(&r, c)
        r["slim"] = c.slim.map { .u32(UInt64($0)) }
        r["dreq"] = .u64(c.dreq ?? 0)
        r["dresp"] = .u64(0)
        r["status"] = .str(be.status)
        r["weight"] = .u32(UInt64(max(0, be.weight)))
        r["act"] = .u32(UInt64(be.activeServers))
        r["bck"] = .u32(UInt64(be.backupServers))
        r["chkdown"] = .u64(be.downTransitions)
        r["lastchg"] = .u32(UInt64(max(0, be.lastChangeSeconds)))
        r["downtime"] = .u32(UInt64(max(0, be.downtimeSeconds)))
        r["lbtot"] = .u64(c.lbtot ?? 0)
        r["algo"] = .str(be.algorithm)
        r["uweight"] = .u32(UInt64(px.servers.reduce(0) { $0 + max(0, $1.userWeight) }))
        for f in ["agg_server_status", "agg_server_check_status", "agg_check_status"] { r[f] = .u32(0) }
        return r
    }

    // MARK: - Shared cells

    /// Cells every row type carries: names, ids, type, mode.
    private static func common(_ r: inout StatsRow, _ px: ProxyStats, _ sv: String, pid: Int32) {
        r["pxname"] = .str(px.name)
        r["svname"] = .str(sv)
        r["pid"] = .u32(UInt64(max(1, pid)))
        r["iid"] = .u32(UInt64(px.id))
        r["sid"] = .u32(0)
        r["type"] = .u32(UInt64(r.kind.rawValue))
        r["mode"] = .str(px.mode)
    }

    /// Queue, session, byte, error, warning and timing cells shared by servers and backends.
    private static func queueAndSessions(_ r: inout StatsRow, _ c: RowCounters) {
        r["qcur"] = .u32(UInt64(c.qcur ?? 0))
        r["qmax"] = .u32(UInt64(c.qmax ?? 0))
        r["scur"] = .u32(UInt64(c.scur))
        r["smax"] = .u32(UInt64(c.smax))
        r["stot"] = .u64(c.stot)
        r["bin"] = .u64(c.bin)
        r["bout"] = .u64(c.bout)
        r["econ"] = .u64(c.econ ?? 0)
        r["eresp"] = .u64(c.eresp ?? 0)
        r["wretr"] = .u64(c.wretr ?? 0)
        r["wredis"] = .u64(c.wredis ?? 0)
        r["rate"] = .u32(UInt64(c.rate))
        r["rate_max"] = .u32(UInt64(c.rateMax))
        r["cli_abrt"] = .u64(c.cliAbrt ?? 0)
        r["srv_abrt"] = .u64(c.srvAbrt ?? 0)
        r["lastsess"] = .s32(Int64(c.lastsess ?? -1))
        for f in ["qtime", "ctime", "rtime", "ttime", "qtime_max", "ctime_max", "rtime_max", "ttime_max"] {
            r[f] = .u32(0)
        }
        r["connect"] = .u64(c.stot)
        r["reuse"] = .u64(0)
        r["eint"] = .u64(0)
    }
}
