import Foundation
import Testing
@testable import gproxy

@Suite struct StatsRenderTests {
    let snap = StatsFixtures.snapshot

    func csvLines() -> [String] {
        StatsCSV.render(snap).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    func cells(_ line: String) -> [String] { line.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }

    @Test func csvHeaderIsHAProxy26Exactly() {
        let expected = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,\n"
        #expect(StatsCSV.header == expected)
        #expect(StatFields.count == 103)
    }

    @Test func csvRowsHave104ColumnsAndTrailingComma() {
        let lines = csvLines()
        #expect(lines.last == "")
        let body = lines.dropLast()
        // 3 proxies: 2 × (FE + 4 servers + BE) + stats (FE + BE).
        #expect(body.count == 1 + 12 + 2)
        for l in body {
            #expect(l.hasSuffix(","))
            #expect(cells(l).count == 104)
            #expect(cells(l).last == "")
        }
        let names = body.dropFirst().map { cells($0)[0] + "/" + cells($0)[1] }
        #expect(Array(names.prefix(6)) == ["opengauss/FRONTEND", "opengauss/pg1", "opengauss/pg2", "opengauss/pg3",
                                           "opengauss/pg4", "opengauss/BACKEND"])
    }

    @Test func csvFieldValues() {
        let lines = csvLines()
        let fe = cells(lines[1]), pg1 = cells(lines[2]), pg2 = cells(lines[3]), be = cells(lines[6])
        func f(_ row: [String], _ name: String) -> String { row[StatFields.index(name)] }
        // Frontend: like HAProxy's "opengauss,FRONTEND,,,0,2,9981,2,0,20,0,0,0,,,,,OPEN".
        #expect(fe.prefix(18).joined(separator: ",") == "opengauss,FRONTEND,,,1,3,9981,12,1000,2000,0,0,0,,,,,OPEN")
        #expect(f(fe, "type") == "0" && f(fe, "pid") == "4242" && f(fe, "iid") == "2" && f(fe, "sid") == "0")
        #expect(f(fe, "mode") == "tcp" && f(fe, "algo") == "" && f(fe, "act") == "")
        // Server UP: "opengauss,pg1,0,0,1,3,100,12,1000,2000,,0,,0,0,0,0,UP,1,1,0,0,0,7380,0,,4242,2,1,,12,,2".
        #expect(pg1.prefix(33).joined(separator: ",")
                == "opengauss,pg1,0,0,1,3,100,12,1000,2000,,0,,0,0,0,0,UP,1,1,0,0,0,7380,0,,4242,2,1,,12,,2")
        #expect(f(pg1, "check_status") == "L7OK" && f(pg1, "check_code") == "200" && f(pg1, "check_duration") == "1")
        #expect(f(pg1, "last_chk") == "OK" && f(pg1, "check_desc") == "Layer7 check passed")
        #expect(f(pg1, "check_rise") == "2" && f(pg1, "check_fall") == "3" && f(pg1, "check_health") == "4")
        #expect(f(pg1, "addr") == "10.0.0.1:5432" && f(pg1, "lastsess") == "3" && f(pg1, "uweight") == "1")
        #expect(f(pg2, "status") == "DOWN" && f(pg2, "check_status") == "L7STS" && f(pg2, "check_code") == "503")
        #expect(f(pg2, "check_desc") == "Layer7 wrong status" && f(pg2, "last_chk") == "Service Unavailable")
        #expect(f(pg2, "chkfail") == "1" && f(pg2, "chkdown") == "1" && f(pg2, "lastsess") == "-1")
        #expect(f(pg2, "weight") == "1" && f(pg2, "act") == "1" && f(pg2, "bck") == "0")
        // Backend: act = usable active servers, algo, type 1.
        #expect(f(be, "svname") == "BACKEND" && f(be, "type") == "1" && f(be, "act") == "1" && f(be, "bck") == "0")
        #expect(f(be, "algo") == "roundrobin" && f(be, "slim") == "999" && f(be, "chkfail") == "" && f(be, "status") == "UP")
        let bal = cells(lines[8...].first { $0.hasPrefix("opengauss_balance,BACKEND") }!)
        #expect(f(bal, "act") == "3" && f(bal, "weight") == "3")
    }

    @Test func csvQuotesCommasAndQuotes() {
        #expect(StatsCSV.quote("a,b") == "\"a,b\"")
        #expect(StatsCSV.quote("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(StatsCSV.quote("plain") == "plain")
        var s = snap
        s.proxies[0].servers[1].lastCheckInfo = "bad, \"really\""
        let line = StatsCSV.render(s).split(separator: "\n")[3]
        #expect(line.contains(",\"bad, \"\"really\"\"\","))
    }

    @Test func csvFilters() {
        var s = snap
        s.proxies[0].servers[2].adminState = .maint
        s.proxies[0].servers[2].status = "MAINT"
        let noMaint = StatsCSV.render(s, filter: .init(noMaint: true))
        #expect(!noMaint.contains("opengauss,pg3,"))
        #expect(noMaint.contains("opengauss,pg2,"))
        let up = StatsCSV.render(s, filter: .init(upOnly: true))
        #expect(up.contains("opengauss,pg1,") && !up.contains("opengauss,pg2,") && !up.contains("opengauss,pg3,"))
    }

    @Test func jsonParsesAndHasHAProxyShape() throws {
        var s = snap
        s.proxies[0].servers[0].lastCheckInfo = "quote \" back \\ nl \n ctl \u{1}"
        let text = StatsJSON.render(s)
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[[String: Any]]]
        let objs = try #require(parsed?.first)
        #expect(parsed?.count == 1)
        let pg1Name = try #require(objs.first {
            ($0["objType"] as? String) == "Server" && ($0["proxyId"] as? Int) == 2 && ($0["id"] as? Int) == 1
                && (($0["field"] as? [String: Any])?["name"] as? String) == "svname"
        })
        #expect(((pg1Name["value"] as? [String: Any])?["value"] as? String) == "pg1")
        #expect(((pg1Name["value"] as? [String: Any])?["type"] as? String) == "str")
        #expect(((pg1Name["field"] as? [String: Any])?["pos"] as? Int) == 1)
        #expect(pg1Name["processNum"] as? Int == 1)
        let tags = try #require(pg1Name["tags"] as? [String: Any])
        #expect(tags["origin"] as? String == "Key" && tags["nature"] as? String == "Name" && tags["scope"] as? String == "Service")
        let lastChk = try #require(objs.first {
            ($0["id"] as? Int) == 1 && ($0["proxyId"] as? Int) == 2 && (($0["field"] as? [String: Any])?["name"] as? String) == "last_chk"
        })
        #expect(((lastChk["value"] as? [String: Any])?["value"] as? String) == "quote \" back \\ nl \n ctl \u{1}")
        let scur = try #require(objs.first {
            ($0["objType"] as? String) == "Frontend" && ($0["proxyId"] as? Int) == 2 && (($0["field"] as? [String: Any])?["name"] as? String) == "scur"
        })
        #expect(((scur["value"] as? [String: Any])?["value"] as? Int) == 1)
        #expect(((scur["value"] as? [String: Any])?["type"] as? String) == "u32")
        #expect(Set(objs.compactMap { $0["objType"] as? String }) == ["Frontend", "Backend", "Server"])
    }

    @Test func htmlRowsAndClasses() {
        let html = StatsHTML.render(snap)
        #expect(html.contains("<meta name=\"viewport\""))
        #expect(!html.contains("http-equiv=\"refresh\""))
        #expect(!html.contains("<script"))
        #expect(html.contains("version = gproxy 0.1"))
        #expect(html.contains(".active_up { background: #c0ffc0; }"))
        #expect(html.contains(".active_down, .backup_down { background: #ff9090; }"))
        // Write proxy: pg1 green, replicas red; read proxy the reverse.
        let writeTable = html.components(separatedBy: "opengauss_balance</th>")[0]
        let readTable = html.components(separatedBy: "opengauss_balance</th>")[1]
        #expect(writeTable.contains("<tr class=\"active_up\"><td class=\"name\">pg1</td>"))
        for n in 2...4 { #expect(writeTable.contains("<tr class=\"active_down\"><td class=\"name\">pg\(n)</td>")) }
        #expect(readTable.contains("<tr class=\"active_down\"><td class=\"name\">pg1</td>"))
        for n in 2...4 { #expect(readTable.contains("<tr class=\"active_up\"><td class=\"name\">pg\(n)</td>")) }
        #expect(html.contains("<td>2h3m UP</td><td>L7OK/200 in 1ms</td>"))
        #expect(html.contains("<td>5s DOWN</td><td>L7STS/503 in 2ms</td>"))
        for legend in ["active UP", "backup UP", "active or backup DOWN", "not checked",
                       "active or backup DOWN for maintenance (MAINT)"] { #expect(html.contains(legend)) }
        let hidden = StatsHTML.render(snap, options: .init(refreshSeconds: 5, hideVersion: true))
        #expect(hidden.contains("<meta http-equiv=\"refresh\" content=\"5\">"))
        #expect(!hidden.contains("gproxy 0.1"))
    }

    @Test func htmlEscapesNamesAndClassesPerState() {
        var s = snap
        s.proxies[0].name = "<b>&x"
        s.proxies[0].servers[1].status = "DOWN 1/2"
        s.proxies[0].servers[2].status = "MAINT"
        s.proxies[0].servers[2].adminState = .maint
        s.proxies[0].servers[3].status = "no check"
        s.proxies[0].servers[3].checked = false
        s.proxies[1].servers[1].status = "UP 2/3"
        s.proxies[1].servers[2].backup = true
        let html = StatsHTML.render(s)
        #expect(html.contains("&lt;b&gt;&amp;x") && !html.contains("<b>&x"))
        #expect(html.contains("<tr class=\"active_going_up\"><td class=\"name\">pg2</td>"))
        #expect(html.contains("<tr class=\"maintain\"><td class=\"name\">pg3</td>"))
        #expect(html.contains("<tr class=\"active_no_check\"><td class=\"name\">pg4</td>"))
        #expect(html.contains("<tr class=\"active_going_down\"><td class=\"name\">pg2</td>"))
        #expect(html.contains("<tr class=\"backup_up\"><td class=\"name\">pg3</td>"))
    }

    @Test func humanTimeMatchesHAProxy() {
        #expect(StatsHTML.humanTime(0) == "0s")
        #expect(StatsHTML.humanTime(16) == "16s")
        #expect(StatsHTML.humanTime(7380) == "2h3m")
        #expect(StatsHTML.humanTime(3600) == "1h")
        #expect(StatsHTML.humanTime(90061) == "1d1h")
        #expect(StatsHTML.humanTime(61) == "1m1s")
    }
}
