import CEpoll
import Foundation
import Glibc
import Splicer
import Testing
@testable import gproxy

/// The stats listener and the runtime socket of a whole running gproxy, over real sockets, in front
/// of the simulated Patroni cluster: what they report follows what the checker and the relay do, and
/// what the runtime socket changes is what the relay then does.
@Suite(.serialized) struct StatsLiveTests {
    // CSV column indexes (management guide §9.1).
    enum Col {
        static let pxname = 0, svname = 1, qcur = 2, scur = 4, smax = 5, slim = 6, stot = 7, bin = 8, bout = 9
        static let status = 17, weight = 18, act = 19, bck = 20, type = 32
        static let checkStatus = 36, checkCode = 37, addr = 73, mode = 75, algo = 76
    }

    /// One running gproxy with the seed's two listens, a stats listener and optionally a stats socket.
    struct Setup {
        let cluster: SimulatedCluster
        let harness: RuntimeHarness
        let rw: UInt16, ro: UInt16, stats: UInt16
        let socketPath: String?

        init(statsOptions: String = "", socket: Bool = false) throws {
            cluster = try SimulatedCluster()
            rw = RuntimeHarness.freePort()
            ro = RuntimeHarness.freePort()
            stats = RuntimeHarness.freePort()
            var text = ""
            if socket {
                let path = "/tmp/gproxy-test-\(getpid())-\(cepoll_monotonic_us()).sock"
                socketPath = path
                text += "global\n    stats socket \(path) mode 600 level admin\n\n"
            } else {
                socketPath = nil
            }
            text += RuntimeHarness.seedConfig(cluster, rw: rw, ro: ro)
            text += """

            listen stats
                mode http
                bind 127.0.0.1:\(stats)
                stats enable
                stats uri /
            \(statsOptions)
            """
            do {
                harness = try RuntimeHarness(text)
            } catch {
                cluster.stop()
                throw error
            }
        }

        func stop() {
            harness.stop()
            cluster.stop()
            if let socketPath {
                // The server removes its file on stop; make sure nothing is left behind either way.
                #expect(access(socketPath, F_OK) != 0)
                unlink(socketPath)
            }
        }

        /// The settled seed state: pg1 the only writer, the three replicas the readers.
        func waitSettled() -> Bool {
            RuntimeHarness.eventually {
                let rows = (try? csv()) ?? []
                return ["pg2", "pg3", "pg4"].allSatisfy { s in
                    rows.row("opengauss", s)?[Col.status] == "DOWN" && rows.row("opengauss_balance", s)?[Col.status] == "UP"
                } && rows.row("opengauss", "pg1")?[Col.status] == "UP" && rows.row("opengauss_balance", "pg1")?[Col.status] == "DOWN"
            }
        }

        func get(_ path: String, headers: String = "") -> (status: Int, head: String, body: String) {
            let reply = TestClient.get(port: stats, "GET \(path) HTTP/1.1\r\nHost: x\r\n\(headers)\r\n")
            guard let split = reply.range(of: "\r\n\r\n") else { return (0, reply, "") }
            let head = String(reply[..<split.lowerBound])
            let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            return (status, head, String(reply[split.upperBound...]))
        }

        func csv() throws -> [[String]] {
            let r = get("/;csv")
            guard r.status == 200 else { throw CSVError.status(r.status) }
            return try parseCSV(r.body)
        }

        /// Runs one command line on the stats socket and returns the reply.
        func cli(_ line: String) -> String {
            let fd = StatsRuntimeSocketTests.unixConnect(socketPath!)
            defer { close(fd) }
            TestClient.send(fd, line + "\n")
            return TestClient.readAll(fd)
        }

        /// The nodes behind `count` successive connections to `port`.
        func nodes(_ port: UInt16, _ count: Int = 6) -> [String] {
            (0..<count).map { _ in RuntimeHarness.nodeBehind(port: port) ?? "none" }
        }

        /// The fields of `show servers state` for one server.
        func serverState(_ backend: String, _ server: String) -> [Substring]? {
            cli("show servers state \(backend)").split(separator: "\n")
                .map { $0.split(separator: " ") }.first { $0.count > 3 && $0[3] == server }
        }
    }

    enum CSVError: Error { case status(Int), header(String), quote(String), width(Int, String) }

    /// Parses HAProxy's CSV: a `# `-prefixed header, a trailing comma on every line, quoted fields.
    static func parseCSV(_ text: String) throws -> [[String]] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.last == "" else { throw CSVError.header("no final LF") }
        lines.removeLast()
        guard let header = lines.first, header.hasPrefix("# pxname,svname,") else { throw CSVError.header(String(lines.first ?? "")) }
        var out: [[String]] = []
        for line in lines {
            guard line.hasSuffix(",") else { throw CSVError.width(-1, String(line)) }
            var fields: [String] = [], field = "", quoted = false, i = line.startIndex
            while i < line.endIndex {
                let ch = line[i]
                if quoted {
                    if ch == "\"" {
                        let next = line.index(after: i)
                        if next < line.endIndex, line[next] == "\"" { field.append("\""); i = next } else { quoted = false }
                    } else {
                        field.append(ch)
                    }
                } else if ch == "\"" {
                    quoted = true
                } else if ch == "," {
                    fields.append(field)
                    field = ""
                } else {
                    field.append(ch)
                }
                i = line.index(after: i)
            }
            guard !quoted, field.isEmpty else { throw CSVError.quote(String(line)) }
            out.append(fields)
        }
        let width = out[0].count
        for row in out where row.count != width { throw CSVError.width(row.count, row.joined(separator: ",")) }
        #expect(width >= 100)
        return out
    }

    // MARK: - Stats page

    @Test func csvJsonAndMetricsFollowTheClusterAndTheTraffic() throws {
        let s = try Setup()
        defer { s.stop() }
        #expect(s.waitSettled())
        let rows = try s.csv()
        let members = s.cluster.members
        #expect(rows[0][Col.pxname] == "# pxname" && rows[0][Col.status] == "status" && rows[0][Col.addr] == "addr")

        // Row order per proxy: FRONTEND, servers in order, BACKEND.
        let order = rows.dropFirst().filter { $0[0].hasPrefix("opengauss") }.map { "\($0[0])/\($0[1])" }
        let expected = ["opengauss", "opengauss_balance"].flatMap { p in
            ["\(p)/FRONTEND"] + members.map { "\(p)/\($0.name)" } + ["\(p)/BACKEND"]
        }
        #expect(order == expected)

        for m in members {
            for proxy in ["opengauss", "opengauss_balance"] {
                guard let r = rows.row(proxy, m.name) else { Issue.record("no row \(proxy)/\(m.name)"); continue }
                let serving = (proxy == "opengauss") == (m.name == "pg1")
                #expect(r[Col.status] == (serving ? "UP" : "DOWN"), "\(proxy)/\(m.name)")
                #expect(r[Col.checkStatus] == (serving ? "L7OK" : "L7STS"), "\(proxy)/\(m.name)")
                #expect(r[Col.checkCode] == (serving ? "200" : "503"), "\(proxy)/\(m.name)")
                #expect(r[Col.weight] == "1" && r[Col.act] == "1" && r[Col.bck] == "0")
                #expect(r[Col.type] == "2" && r[Col.qcur] == "0" && r[Col.scur] == "0" && r[Col.slim] == "100")
                #expect(r[Col.addr] == "127.0.0.1:\(m.dbPort)" && r[Col.mode] == "tcp")
                #expect(r[Col.stot] == "0")
            }
        }
        for proxy in ["opengauss", "opengauss_balance"] {
            let fe = rows.row(proxy, "FRONTEND"), be = rows.row(proxy, "BACKEND")
            #expect(fe?[Col.type] == "0" && fe?[Col.status] == "OPEN" && fe?[Col.mode] == "tcp")
            #expect(be?[Col.type] == "1" && be?[Col.status] == "UP" && be?[Col.algo] == "roundrobin")
            #expect(be?[Col.act] == (proxy == "opengauss" ? "1" : "3") && be?[Col.weight] == (proxy == "opengauss" ? "1" : "3"))
        }
        #expect(rows.row("stats", "FRONTEND")?[Col.mode] == "http")

        // Traffic: 3 sessions for writes, 6 for reads, each sending 6 bytes that come back echoed.
        for port in [s.rw, s.rw, s.rw] + [UInt16](repeating: s.ro, count: 6) {
            let c = try SimulatedTestClient(port: port)
            #expect(c.readLine(timeoutMs: 2000)?.hasPrefix("gproxy-demo node=") == true)
            c.send("hello\n")
            #expect(c.readLine(timeoutMs: 2000) == "hello\n")
        }
        func int(_ r: [String]?, _ c: Int) -> Int { r.flatMap { Int($0[c]) } ?? -1 }
        var after: [[String]] = []
        #expect(RuntimeHarness.eventually {
            after = (try? s.csv()) ?? []
            return int(after.row("opengauss", "pg1"), Col.stot) == 3 && int(after.row("opengauss_balance", "BACKEND"), Col.stot) == 6
        })
        #expect(int(after.row("opengauss", "FRONTEND"), Col.stot) == 3)
        #expect(int(after.row("opengauss", "BACKEND"), Col.stot) == 3)
        #expect(int(after.row("opengauss_balance", "FRONTEND"), Col.stot) == 6)
        for name in ["pg2", "pg3", "pg4"] {
            let r = after.row("opengauss_balance", name)
            #expect(int(r, Col.stot) == 2, "\(name)")
            #expect(int(r, Col.bin) == 2 * 6, "\(name)")
            // Banner ("gproxy-demo node=pgN role=replica port=P\n") and the echo, twice.
            let banner = "gproxy-demo node=\(name) role=replica port=\(s.cluster.member(name)!.dbPort)\n".utf8.count
            #expect(int(r, Col.bout) == 2 * (banner + 6), "\(name)")
        }
        for name in ["pg2", "pg3", "pg4"] { #expect(int(after.row("opengauss", name), Col.stot) == 0) }
        #expect(int(after.row("opengauss_balance", "pg1"), Col.stot) == 0)
        #expect(int(after.row("opengauss", "pg1"), Col.bin) == 18)
        #expect(int(after.row("opengauss", "FRONTEND"), Col.bin) == 18)
        #expect(int(after.row("opengauss", "FRONTEND"), Col.bout) == int(after.row("opengauss", "pg1"), Col.bout))
        #expect(int(after.row("opengauss", "pg1"), Col.bout) > 18)

        // JSON: valid, and it says what the CSV says.
        let json = s.get("/;json")
        #expect(json.status == 200 && json.head.lowercased().contains("content-type: application/json"))
        let parsed = try JSONSerialization.jsonObject(with: Data(json.body.utf8))
        let objects = (parsed as? [[[String: Any]]])?.first ?? []
        #expect(!objects.isEmpty)
        func jsonField(_ proxy: String, _ server: String, _ name: String) -> String? {
            // Rows are identified by proxy id + server id; find pxname/svname first.
            let rowsOf = Dictionary(grouping: objects) { o -> String in
                "\(o["objType"] ?? "")/\(o["proxyId"] ?? "")/\(o["id"] ?? "")"
            }
            for (_, fields) in rowsOf {
                func value(_ n: String) -> String? {
                    guard let f = fields.first(where: { ($0["field"] as? [String: Any])?["name"] as? String == n }),
                          let v = f["value"] as? [String: Any] else { return nil }
                    return v["value"].map { "\($0)" }
                }
                if value("pxname") == proxy, value("svname") == server { return value(name) }
            }
            return nil
        }
        #expect(jsonField("opengauss", "pg1", "status") == "UP")
        #expect(jsonField("opengauss", "pg2", "status") == "DOWN")
        #expect(jsonField("opengauss_balance", "pg1", "status") == "DOWN")
        #expect(jsonField("opengauss_balance", "pg3", "stot") == "2")

        // Prometheus: strict parse, and haproxy_server_status agrees with the CSV for every server.
        try checkMetricsAgree(s)

        // Switchover: the CSV flips (pg2 writes, pg1 reads again after rise 2).
        _ = try s.cluster.switchover(to: "pg2")
        var flipped: [[String]] = []
        #expect(RuntimeHarness.eventually {
            flipped = (try? s.csv()) ?? []
            return flipped.row("opengauss", "pg2")?[Col.status] == "UP" && flipped.row("opengauss", "pg1")?[Col.status] == "DOWN"
                && flipped.row("opengauss_balance", "pg1")?[Col.status] == "UP" && flipped.row("opengauss_balance", "pg2")?[Col.status] == "DOWN"
        })
        #expect(flipped.row("opengauss", "pg1")?[Col.checkStatus] == "L7STS" && flipped.row("opengauss", "pg1")?[Col.checkCode] == "503")
        #expect(flipped.row("opengauss", "pg2")?[Col.checkStatus] == "L7OK")
        #expect(flipped.row("opengauss_balance", "pg2")?[Col.checkCode] == "503")
        #expect(flipped.row("opengauss", "pg3")?[Col.status] == "DOWN" && flipped.row("opengauss_balance", "pg3")?[Col.status] == "UP")
        try checkMetricsAgree(s)
    }

    /// `/metrics` parses strictly and `haproxy_server_status` has exactly one state at 1 per server,
    /// the one the CSV shows.
    func checkMetricsAgree(_ s: Setup) throws {
        let rows = try s.csv()
        let m = s.get("/metrics")
        #expect(m.status == 200)
        let p = try PromParser(m.body)
        for r in rows.dropFirst() where r[Col.type] == "2" {
            let labels = ["proxy": r[Col.pxname], "server": r[Col.svname]]
            let state = r[Col.status].hasPrefix("UP") ? "UP" : r[Col.status].hasPrefix("DOWN") ? "DOWN" : r[Col.status]
            let ones = p.samples.filter { $0.name == "haproxy_server_status" && $0.value == 1 && $0.labels.filter { $0.key != "state" } == labels }
            #expect(ones.map { $0.labels["state"] } == [state], "\(labels)")
        }
    }

    @Test func basicAuthLive() throws {
        let s = try Setup(statsOptions: "    stats auth admin:s3cret\n    stats realm gproxy\\ stats\n")
        defer { s.stop() }
        let none = s.get("/;csv")
        #expect(none.status == 401)
        #expect(none.head.lowercased().contains("www-authenticate: basic realm=\"gproxy stats\""))
        let wrong = s.get("/;csv", headers: "Authorization: Basic \(Data("admin:nope".utf8).base64EncodedString())\r\n")
        #expect(wrong.status == 401)
        let good = s.get("/;csv", headers: "Authorization: Basic \(Data("admin:s3cret".utf8).base64EncodedString())\r\n")
        #expect(good.status == 200 && good.body.hasPrefix("# pxname,svname,"))
        let html = s.get("/", headers: "Authorization: Basic \(Data("admin:s3cret".utf8).base64EncodedString())\r\n")
        #expect(html.status == 200 && html.body.contains("opengauss_balance"))
    }

    // MARK: - Runtime socket

    @Test func runtimeSocketChangesRouting() throws {
        let s = try Setup(socket: true)
        defer { s.stop() }
        #expect(s.waitSettled())
        var st = stat()
        #expect(stat(s.socketPath!, &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(Set(s.nodes(s.ro)) == ["pg2", "pg3", "pg4"])

        // disable server: pg2 goes to maintenance, reads rotate over pg3 and pg4 only.
        #expect(s.cli("disable server opengauss_balance/pg2") == "\n")
        #expect(Set(s.nodes(s.ro)) == ["pg3", "pg4"])
        #expect(s.serverState("opengauss_balance", "pg2")?[5] == "0")   // srv_op_state stopped
        #expect(s.serverState("opengauss_balance", "pg2")?[6] == "1")   // srv_admin_state forced maint
        #expect(try s.csv().row("opengauss_balance", "pg2")?[Col.status] == "MAINT")
        // enable server: back at once (UP with health = rise), in the rotation again.
        #expect(s.cli("enable server opengauss_balance/pg2") == "\n")
        #expect(s.serverState("opengauss_balance", "pg2")?[6] == "0")
        #expect(Set(s.nodes(s.ro)) == ["pg2", "pg3", "pg4"])

        // set server ... state maint / ready: the same through the newer command.
        #expect(s.cli("set server opengauss_balance/pg2 state maint") == "\n")
        #expect(Set(s.nodes(s.ro)) == ["pg3", "pg4"])
        #expect(s.serverState("opengauss_balance", "pg2")?[6] == "1")
        #expect(s.cli("set server opengauss_balance/pg2 state ready") == "\n")
        #expect(Set(s.nodes(s.ro)) == ["pg2", "pg3", "pg4"])

        // Weight 0 drains pg3: sessions it holds go on, new ones go elsewhere.
        let held = try SimulatedTestClient(port: s.ro)
        var heldNode = held.readLine(timeoutMs: 2000) ?? ""
        // Make sure the held session is on pg3 (the rotation reaches it within three connections).
        var extra: [SimulatedTestClient] = []
        while !heldNode.contains("node=pg3"), extra.count < 3 {
            let c = try SimulatedTestClient(port: s.ro)
            heldNode = c.readLine(timeoutMs: 2000) ?? ""
            extra.append(c)
        }
        let pg3Session = heldNode.contains("node=pg3") ? (extra.last ?? held) : nil
        #expect(pg3Session != nil)
        #expect(s.cli("set server opengauss_balance/pg3 weight 0") == "\n")
        #expect(s.cli("get weight opengauss_balance/pg3") == "0 (initial 1)\n\n")
        #expect(s.serverState("opengauss_balance", "pg3")?[7] == "0")   // srv_uweight
        #expect(s.serverState("opengauss_balance", "pg3")?[5] == "2")   // still running
        let drained = s.nodes(s.ro)
        #expect(Set(drained) == ["pg2", "pg4"], "\(drained)")
        if let pg3Session {
            pg3Session.send("still here\n")
            #expect(pg3Session.readLine(timeoutMs: 2000) == "still here\n")
        }
        #expect(try s.csv().row("opengauss_balance", "pg3")?[Col.weight] == "0")
        #expect(s.cli("set server opengauss_balance/pg3 weight 1") == "\n")
        #expect(Set(s.nodes(s.ro)) == ["pg2", "pg3", "pg4"])
        _ = held
        extra.removeAll()

        // disable server on the writer: on-marked-down shutdown-sessions cuts its open session.
        let writer = try SimulatedTestClient(port: s.rw)
        #expect(writer.readLine(timeoutMs: 2000)?.contains("node=pg1") == true)
        let t0 = Clock.nowMs()
        #expect(s.cli("disable server opengauss/pg1") == "\n")
        let (_, end) = writer.readToEnd(timeoutMs: 3000)
        #expect(end == .eof)
        #expect(Clock.nowMs() - t0 < 1000)
        #expect(s.serverState("opengauss", "pg1")?[6] == "1")
        #expect(s.cli("enable server opengauss/pg1") == "\n")
        #expect(RuntimeHarness.eventually { RuntimeHarness.nodeBehind(port: s.rw) == "pg1" })
        // Unknown servers are reported, not ignored.
        #expect(s.cli("disable server opengauss/pg9").contains("No such server."))
    }

    @Test func clearCountersResetsMaxValuesOrEverything() throws {
        let s = try Setup(socket: true)
        defer { s.stop() }
        #expect(s.waitSettled())
        // Three sessions open at once, then closed: smax 3, stot 3 on the read frontend (the accept
        // that finds the backlog empty after them reserves a slot too, but is not a session).
        var open: [SimulatedTestClient] = []
        for _ in 0..<3 {
            let c = try SimulatedTestClient(port: s.ro)
            let _: String? = c.readLine(timeoutMs: 2000)
            open.append(c)
        }
        open.removeAll()
        func frontend() throws -> [String]? { try s.csv().row("opengauss_balance", "FRONTEND") }
        #expect(RuntimeHarness.eventually { (try? frontend())??[Col.scur] == "0" })
        #expect(try frontend()?[Col.smax] == "3" && frontend()?[Col.stot] == "3")
        // Max values only: smax back to the current 0, the totals stay.
        #expect(s.cli("clear counters") == "\n")
        #expect(try frontend()?[Col.smax] == "0" && frontend()?[Col.stot] == "3")
        // Everything: totals start again from zero and count on.
        #expect(s.cli("clear counters all") == "\n")
        #expect(try frontend()?[Col.stot] == "0")
        #expect(RuntimeHarness.nodeBehind(port: s.ro) != nil)
        #expect(RuntimeHarness.eventually { (try? frontend())??[Col.stot] == "1" })
        #expect(try frontend()?[Col.smax] == "1")
    }
}

extension Array where Element == [String] {
    /// The CSV row of `proxy`/`server`.
    func row(_ proxy: String, _ server: String) -> [String]? {
        first { $0.count > 1 && $0[0] == proxy && $0[1] == server }
    }
}
