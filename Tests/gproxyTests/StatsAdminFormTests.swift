import Testing
@testable import gproxy

/// `stats admin if TRUE`: the page's server actions, posted and answered as HAProxy's page does.
@Suite struct StatsAdminFormTests {
    var config: StatsConfig {
        var c = StatsConfig()
        c.enabled = true
        c.uri = "/"
        c.admin = true
        return c
    }

    func post(_ body: String, admin: FakeAdmin, config: StatsConfig? = nil, headers: String = "") -> String? {
        let raw = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\(headers)\r\n\(body)"
        return StatsHTTPHandler.handle(Array(raw.utf8), config: config ?? self.config, admin: admin) { admin.snapshot() }
            .map { String(decoding: $0, as: UTF8.self) }
    }

    func status(_ backend: String, _ server: String, _ admin: FakeAdmin) -> String? {
        admin.snapshot().proxies.first { $0.name == backend }?.servers.first { $0.name == server }?.status
    }

    @Test func checkedServersTakeTheActionAndThePageSaysSo() {
        let admin = FakeAdmin()
        // opengauss_balance is proxy #3; pg2 and pg3 to maintenance.
        let reply = post("s=pg2&s=pg3&action=maint&b=%233", admin: admin)
        #expect(reply?.hasPrefix("HTTP/1.1 303 See Other\r\n") == true)
        #expect(reply?.contains("location: /;st=DONE\r\n") == true)
        #expect(status("opengauss_balance", "pg2", admin) == "MAINT" && status("opengauss_balance", "pg3", admin) == "MAINT")
        #expect(status("opengauss", "pg2", admin) != "MAINT")  // the other proxy's pg2 is untouched
        // Back to ready, by backend name; one unknown server: partial.
        #expect(post("s=pg2&s=nope&action=ready&b=opengauss_balance", admin: admin)?.contains("location: /;st=PART\r\n") == true)
        #expect(status("opengauss_balance", "pg2", admin) == "UP")
        // Kill sessions goes through the same admin.
        #expect(post("s=pg1&action=shutdown&b=%232", admin: admin)?.contains(";st=DONE") == true)
        #expect(admin.shutdowns == ["opengauss/pg1"])
        // Nothing checked, an unknown action, garbage encoding.
        #expect(post("action=maint&b=%233", admin: admin)?.contains(";st=NONE") == true)
        #expect(post("s=pg2&action=hdown&b=%233", admin: admin)?.contains(";st=ERRP") == true)
        #expect(post("s=pg2&action=maint&b=%2", admin: admin)?.contains(";st=ERRP") == true)
        #expect(post("s=pg2&action=maint&b=%239", admin: admin)?.contains(";st=ERRP") == true)
    }

    @Test func postsAreRefusedOrBoundedAsHTTPSays() {
        let admin = FakeAdmin()
        var off = config
        off.admin = false
        #expect(post("s=pg2&action=maint&b=%233", admin: admin, config: off)?.hasPrefix("HTTP/1.1 405") == true)
        #expect(status("opengauss_balance", "pg2", admin) == "UP")
        // No length, too long, not all there yet.
        let noLength = StatsHTTPHandler.handle(Array("POST / HTTP/1.1\r\n\r\ns=pg2".utf8), config: config, admin: admin) { admin.snapshot() }
        #expect(noLength.map { String(decoding: $0, as: UTF8.self) }?.hasPrefix("HTTP/1.1 411") == true)
        let big = "POST / HTTP/1.1\r\nContent-Length: \(StatsHTTPHandler.maxBodyBytes + 1)\r\n\r\n"
        #expect(StatsHTTPHandler.handle(Array(big.utf8), config: config, admin: admin) { admin.snapshot() }
            .map { String(decoding: $0, as: UTF8.self) }?.hasPrefix("HTTP/1.1 413") == true)
        let partial = "POST / HTTP/1.1\r\nContent-Length: 30\r\n\r\ns=pg2&action"
        #expect(StatsHTTPHandler.handle(Array(partial.utf8), config: config, admin: admin) { admin.snapshot() } == nil)
        // `stats auth` guards the actions too.
        var guarded = config
        guarded.auth = [StatsCredential(user: "ops", password: "pw")]
        #expect(post("s=pg2&action=maint&b=%233", admin: admin, config: guarded)?.hasPrefix("HTTP/1.1 401") == true)
        #expect(status("opengauss_balance", "pg2", admin) == "UP")
        #expect(post("s=pg2&action=maint&b=%233", admin: admin, config: guarded,
                     headers: "Authorization: Basic b3BzOnB3\r\n")?.contains(";st=DONE") == true)
    }

    @Test func thePageCarriesTheFormAndTheOutcome() {
        let admin = FakeAdmin()
        let reply = StatsHTTPHandler.handle(Array("GET /;st=DONE HTTP/1.1\r\n\r\n".utf8), config: config, admin: admin) {
            admin.snapshot()
        }.map { String(decoding: $0, as: UTF8.self) } ?? ""
        #expect(reply.contains("<form method=\"post\" action=\"/\">"))
        #expect(reply.contains("<input type=\"checkbox\" name=\"s\" value=\"pg2\">"))
        #expect(reply.contains("<input type=\"hidden\" name=\"b\" value=\"#3\">"))
        #expect(reply.contains("<option value=\"maint\">Set state to MAINT</option>"))
        #expect(reply.contains("Action processed successfully."))
        // Without `stats admin`: no form.
        var off = config
        off.admin = false
        let plain = StatsHTTPHandler.handle(Array("GET / HTTP/1.1\r\n\r\n".utf8), config: off) { admin.snapshot() }
            .map { String(decoding: $0, as: UTF8.self) } ?? ""
        #expect(!plain.contains("<form") && !plain.contains("checkbox"))
    }

    @Test func configAcceptsOnlyConstantConditions() throws {
        func admin(_ line: String) throws -> Bool {
            let config = try parseOK("listen stats\n    mode http\n    bind :1\n    stats uri /\n    \(line)\n")
            return try #require(config.proxy(named: "stats")).stats.admin
        }
        #expect(try admin("stats admin if TRUE"))
        #expect(try admin("stats admin unless FALSE"))
        #expect(try admin("stats admin if"))
        #expect(try !admin("stats admin if FALSE"))
        #expect(try !admin("stats enable"))
    }
}
