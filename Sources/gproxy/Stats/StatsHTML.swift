/// The stats page (§9.4): one table per proxy with its FRONTEND row, a row per server and the
/// BACKEND row, coloured with HAProxy's row classes so an operator sees the Patroni primary as the
/// one green row of the write proxy, and the replicas as the green rows of the read proxy.
/// Static HTML and inline CSS, no JavaScript; tables scroll sideways on a phone.
enum StatsHTML {
    struct Options: Sendable, Equatable {
        /// `stats refresh` in seconds, nil = off (or `;norefresh`).
        var refreshSeconds: Int?
        var hideVersion = false
        var filter = StatsRows.Filter()
        /// `stats admin`: the form's target (the stats uri); nil = no admin form.
        var adminURI: String?
        /// The outcome of the last admin action (`;st=` after the redirect).
        var message: String?
    }

    static func render(_ snap: StatsSnapshot, options: Options = Options()) -> String {
        var o = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
        o += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        if let r = options.refreshSeconds { o += "<meta http-equiv=\"refresh\" content=\"\(r)\">\n" }
        o += "<title>Statistics Report for gproxy\(snap.nodeName.isEmpty ? "" : " on " + escape(snap.nodeName))</title>\n"
        o += "<style>\n\(css)</style></head><body>\n"
        o += "<h1>gproxy statistics report</h1>\n"
        o += processInfo(snap, options)
        o += legend
        if let m = options.message { o += "<p class=\"message\">\(escape(m))</p>\n" }
        for px in snap.proxies { o += table(px, filter: options.filter, adminURI: options.adminURI) }
        o += "</body></html>\n"
        return o
    }

    // MARK: - Sections

    private static func processInfo(_ s: StatsSnapshot, _ opt: Options) -> String {
        var o = "<h2>General process information</h2>\n<p class=\"info\">"
        o += "pid = \(s.pid) (process #1, nbthread = \(s.info.nbthread))<br>\n"
        o += "uptime = \(uptime(s.uptimeSeconds))<br>\n"
        if !opt.hideVersion { o += "version = \(escape(s.version))<br>\n" }
        if !s.nodeName.isEmpty { o += "node = \(escape(s.nodeName))<br>\n" }
        for v in s.virtualAddresses {
            o += "vip \(escape(v.address)) = \(v.held ? "<b>held by this node</b>" : "not on this node")<br>\n"
        }
        o += "maxconn = \(s.info.maxconn); current conns = \(s.info.currentConnections)<br>\n"
        if let r = opt.refreshSeconds { o += "refresh = \(r)s<br>\n" }
        o += "</p>\n"
        return o
    }

    private static let legend: String = {
        let items: [(String, String)] = [
            ("active_up", "active UP"), ("backup_up", "backup UP"),
            ("active_going_down", "active UP, going down"), ("backup_going_down", "backup UP, going down"),
            ("active_going_up", "active DOWN, going up"), ("backup_going_up", "backup DOWN, going up"),
            ("active_down", "active or backup DOWN"), ("active_no_check", "not checked"),
            ("maintain", "active or backup DOWN for maintenance (MAINT)"),
            ("active_draining", "active or backup SOFT STOPPED for maintenance"),
        ]
        // Items wrap as wholes on a narrow screen: a swatch and its text never separate.
        var o = "<div class=\"legend\">"
        for (cls, text) in items { o += "<span><i class=\"\(cls)\"></i>\(text)</span>" }
        return o + "</div>\n<p class=\"note\">Note: \"NOLB\"/\"DRAIN\" = UP with load-balancing disabled.</p>\n"
    }()

    /// Two header rows: the column groups, then the columns.
    private static let columnHeaders: String = {
        let groups: [(String, [String])] = [
            ("Queue", ["Cur", "Max", "Limit"]), ("Session rate", ["Cur", "Max"]),
            ("Sessions", ["Cur", "Max", "Limit", "Total", "LbTot", "Last"]), ("Bytes", ["In", "Out"]),
            ("Denied", ["Req"]), ("Errors", ["Req", "Conn", "Resp"]), ("Warnings", ["Retr", "Redis"]),
            ("Server", ["Status", "LastChk", "Wght", "Act", "Bck", "Chk", "Dwn", "Dwntme"]),
        ]
        var a = "<tr class=\"titre groups\"><th rowspan=\"2\" class=\"name\"></th>"
        var b = "<tr class=\"titre\">"
        for (g, cols) in groups {
            a += "<th colspan=\"\(cols.count)\">\(g)</th>"
            for c in cols { b += "<th>\(c)</th>" }
        }
        return a + "</tr>\n" + b + "</tr>\n"
    }()

    private static func table(_ px: ProxyStats, filter: StatsRows.Filter, adminURI: String?) -> String {
        // `stats admin`: a form per backend with servers, a checkbox per server and the actions.
        let form = adminURI.flatMap { px.backend != nil && !px.servers.isEmpty ? $0 : nil }
        var o = form.map { "<form method=\"post\" action=\"\(escape($0))\">\n" } ?? ""
        o += "<div class=\"px\"><table>\n<tr class=\"pxname\"><th colspan=\"28\">\(escape(px.name))</th></tr>\n"
        o += columnHeaders
        if let fe = px.frontend {
            let c = fe.counters
            o += "<tr class=\"frontend\"><td class=\"name\">Frontend</td>"
            o += cells(["", "", "", n(c.rate), n(c.rateMax), n(c.scur), n(c.smax), opt(c.slim), n(c.stot), "", "",
                        n(c.bin), n(c.bout), n(c.dreq ?? 0), n(c.ereq ?? 0), "", "", "", "",
                        escape(fe.status), "", "", "", "", "", "", ""])
            o += "</tr>\n"
        }
        for sv in px.servers where !filter.hides(sv) { o += serverRow(sv, checkbox: form != nil) }
        if let be = px.backend {
            let c = be.counters
            o += "<tr class=\"backend\"><td class=\"name\">Backend</td>"
            o += cells([n(c.qcur ?? 0), n(c.qmax ?? 0), "", n(c.rate), n(c.rateMax), n(c.scur), n(c.smax), opt(c.slim),
                        n(c.stot), n(c.lbtot ?? 0), last(c.lastsess), n(c.bin), n(c.bout), n(c.dreq ?? 0), "",
                        n(c.econ ?? 0), n(c.eresp ?? 0), n(c.wretr ?? 0), n(c.wredis ?? 0),
                        "\(humanTime(be.lastChangeSeconds)) \(escape(be.status))", "", n(be.weight),
                        n(be.activeServers), n(be.backupServers), "", n(be.downTransitions), humanTime(be.downtimeSeconds)])
            o += "</tr>\n"
        }
        o += "</table></div>\n"
        if form != nil {
            o += "<p class=\"admin\">Choose the action to perform on the checked servers: <select name=\"action\">"
            for a in StatsAdminForm.actions { o += "<option value=\"\(a.name)\">\(a.label)</option>" }
            o += "</select><input type=\"hidden\" name=\"b\" value=\"#\(px.id)\"> <input type=\"submit\" value=\"Apply\"></p>\n"
            o += "</form>\n"
        }
        return o
    }

    private static func serverRow(_ sv: ServerStats, checkbox: Bool) -> String {
        let c = sv.counters
        let box = checkbox ? "<input type=\"checkbox\" name=\"s\" value=\"\(escape(sv.name))\"> " : ""
        var o = "<tr class=\"\(sv.htmlRowClass)\"><td class=\"name\">\(box)\(escape(sv.name))</td>"
        o += cells([n(c.qcur ?? 0), n(c.qmax ?? 0), opt(c.qlimit), n(c.rate), n(c.rateMax), n(c.scur), n(c.smax),
                    opt(c.slim), n(c.stot), n(c.lbtot ?? 0), last(c.lastsess), n(c.bin), n(c.bout), "", "",
                    n(c.econ ?? 0), n(c.eresp ?? 0), n(c.wretr ?? 0), n(c.wredis ?? 0),
                    "\(humanTime(sv.lastChangeSeconds)) \(escape(sv.status))", escape(lastCheck(sv)),
                    "\(sv.weight)/\(sv.userWeight)", sv.backup ? "-" : "Y", sv.backup ? "Y" : "-",
                    sv.checked ? n(sv.checkFailures) : "", sv.checked ? n(sv.downTransitions) : "",
                    sv.checked ? humanTime(sv.downtimeSeconds) : ""])
        return o + "</tr>\n"
    }

    // MARK: - Cell text

    /// "L7OK/200 in 1ms", "L4CON in 0ms", "" when unchecked (HAProxy's LastChk column).
    static func lastCheck(_ sv: ServerStats) -> String {
        guard sv.checked, let st = sv.checkStatus else { return "" }
        var s = st.rawValue
        if let code = sv.checkCode { s += "/\(code)" }
        if let ms = sv.checkDurationMs { s += " in \(ms)ms" }
        return s
    }

    /// HAProxy's `human_time`: at most two units, e.g. "0s", "16s", "2h3m", "3d1h".
    static func humanTime(_ t: Int) -> String {
        guard t >= 0 else { return "?" }
        let (day, hour, minute) = (86_400, 3_600, 60)
        var s = ""
        var cnt = 0
        if t >= day { s += "\(t / day)d"; cnt += 1 }
        if cnt < 2, t % day / hour != 0 { s += "\(t % day / hour)h"; cnt += 1 }
        if cnt < 2, t % hour / minute != 0 { s += "\(t % hour / minute)m"; cnt += 1 }
        if (t % minute == 0 && cnt == 0) || (cnt < 2 && t % minute != 0) { s += "\(t % minute)s" }
        return s
    }

    /// "0d 2h03m04s", as HAProxy's process information prints the uptime.
    static func uptime(_ t: Int) -> String {
        let t = max(0, t)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(t / 86_400)d \(t % 86_400 / 3_600)h\(two(t % 3_600 / 60))m\(two(t % 60))s"
    }

    /// Escapes the five HTML-special characters; every name and free text goes through this.
    static func escape(_ s: String) -> String {
        var o = ""
        o.reserveCapacity(s.utf8.count)
        for ch in s {
            switch ch {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.append(ch)
            }
        }
        return o
    }

    private static func cells(_ values: [String]) -> String { values.map { "<td>\($0)</td>" }.joined() }
    private static func n(_ v: some BinaryInteger) -> String { String(v) }
    private static func opt(_ v: Int?) -> String { v.map(String.init) ?? "" }
    private static func last(_ v: Int?) -> String { guard let v, v >= 0 else { return "" }; return humanTime(v) }

    /// HAProxy's colours (§9.4); the wrapper div makes wide tables scroll instead of the page, and the
    /// name column stays in view while they scroll (the row colour then still tells the state).
    static let css = """
    body { font-family: arial, helvetica, sans-serif; font-size: 12px; margin: 4px; color: #000; background: #fbfbfb; }
    h1 { font-size: 18px; color: #fff; background: #20d0d0; padding: 4px; margin: 0 0 6px 0; }
    h2 { font-size: 14px; margin: 8px 0 2px 0; }
    .px { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: 8px 0; }
    table { border-collapse: separate; border-spacing: 0; white-space: nowrap; border-top: 1px solid #999; border-left: 1px solid #999; }
    td, th { border-right: 1px solid #999; border-bottom: 1px solid #999; padding: 1px 4px; text-align: right; }
    td.name, th.name { text-align: left; font-weight: bold; position: sticky; left: 0; z-index: 1; background: inherit; border-right: 2px solid #777; }
    tr.pxname th { background: #b00040; color: #ffff40; text-align: left; font-size: 14px; }
    tr.titre, tr.titre th, .titre { background: #20D0D0; color: #000; }
    tr.groups th { text-align: center; }
    tr.frontend, tr.backend { background: #e8e8d0; }
    .active_up { background: #c0ffc0; } .backup_up { background: #b0d0ff; }
    .active_going_down { background: #ffffa0; } .backup_going_down { background: #c060ff; }
    .active_going_up { background: #ffd020; } .backup_going_up { background: #ff80ff; }
    .active_down, .backup_down { background: #ff9090; }
    .active_nolb { background: #20a0ff; } .backup_nolb { background: #90b0e0; }
    .active_draining { background: #20a0FF; } .backup_draining { background: #cc9900; }
    .active_no_check, .backup_no_check { background: #e0e0e0; }
    .maintain { background: #c07820; }
    .message { background: #e0e0ff; border: 1px solid #9090d0; padding: 4px; }
    .legend { display: flex; flex-wrap: wrap; gap: 3px 14px; margin: 6px 0; }
    .legend span { display: inline-flex; align-items: center; white-space: nowrap; }
    .legend i { display: inline-block; width: 12px; height: 12px; border: 1px solid #999; margin-right: 4px; }
    @media (max-width: 600px) {
      body { font-size: 11px; }
      td, th { padding: 1px 3px; }
      .legend span { white-space: normal; }
    }

    """
}
