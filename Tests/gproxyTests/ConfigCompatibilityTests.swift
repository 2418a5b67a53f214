import Splicer
import Synchronization
import Testing
@testable import gproxy

/// HAProxy keywords gproxy implies, replaces or now honours, server addresses resolved once when the
/// configuration is read, and loading that stays linear in the number of servers and proxies.
@Suite struct ConfigCompatibilityTests {
    @Test func serverAddressesAreResolvedWhenTheConfigIsRead() throws {
        let config = try parseOK("""
            backend b
                server ip 10.0.0.1:5432
                server v6 [::1]:5432
                server name localhost:5432

            """)
        let servers = try #require(config.proxy(named: "b")).servers
        #expect(servers.map(\.host) == ["10.0.0.1", "::1", "localhost"])
        #expect(servers[0].address == "10.0.0.1")
        #expect(servers[1].address == "::1")
        #expect(["127.0.0.1", "::1"].contains(servers[2].address ?? "unresolved"))
    }

    @Test func eachHostNameIsResolvedOnce() throws {
        let asked = Locked<[String]>([])
        let resolver = HostResolver { host in
            asked.withLock { $0.append(host) }
            return "192.0.2.7"
        }
        let config = try ConfigLoader.parse(text: """
            backend a
                server a1 db.example:5432
                server a2 db.example:5433
            backend b
                server b1 db.example:5432
                server b2 10.0.0.2:5432

            """, resolver: resolver)
        #expect(asked.withLock { $0 } == ["db.example"])
        #expect(config.proxies.flatMap(\.servers).map(\.address) == ["192.0.2.7", "192.0.2.7", "192.0.2.7", "10.0.0.2"])
    }

    @Test func impliedOrReplacedKeywordsWarnAndTheRestIsHonoured() throws {
        let config = try parseOK("""
            global
                stats socket /tmp/gproxy-compat.sock expose-fd listeners
                maxpipes 64
                log stdout len 200 local0
            listen a
                bind :1
                option splice-auto
                timeout client 1s
                timeout connect 1s
                timeout server 1s
                server s 127.0.0.1:1

            """)
        #expect(config.global.maxpipes == 64)
        #expect(config.global.logTargets.map(\.maxLength) == [200])
        #expect(config.global.statsSockets.count == 1)
        #expect(config.warnings.map(\.description) == [
            "t.cfg:2: 'stats socket' : 'expose-fd listeners' is implied: gproxy always hands its listening "
                + "sockets over to the process that replaces it (-sf), through its own channel.",
            "t.cfg:7: 'option splice-auto' has no effect: gproxy's relay already copies small messages and "
                + "switches each direction to splice once it carries bulk data ('option splice-request' / "
                + "'splice-response' splice from the first byte).",
        ])
    }

    @Test func logLinesAreAtMost1024BytesUnlessLenSaysOtherwise() throws {
        let config = try parseOK("global\n    log stdout local0\n")
        #expect(config.global.logTargets.map(\.maxLength) == [1024])
    }

    @Test func aValidRstatusRegexIsKept() throws {
        let config = try parseOK("""
            backend b
                option httpchk
                http-check expect rstatus ^2[0-9]{2}$
                server s 127.0.0.1:1 check

            """)
        #expect(try #require(config.proxy(named: "b")).httpCheckExpects.map(\.matcher) == [.rstatus("^2[0-9]{2}$")])
    }

    /// 20,000 servers in one backend and 2,000 proxies: both used to cost a scan per line.
    @Test func largeConfigsLoadAndDuplicatesAreStillFound() throws {
        var text = "backend big\n"
        for i in 0..<20_000 { text += "    server s\(i) 10.\(i / 62_500).\(i / 250 % 250).\(i % 250 + 1):5432 id \(i + 1)\n" }
        for p in 0..<2_000 { text += "backend p\(p)\n    server s 10.1.\(p / 250).\(p % 250 + 1):5432\n" }
        let config = try parseOK(text)
        #expect(config.proxies.count == 2_001)
        #expect(config.proxies[0].servers.count == 20_000)
        #expect(config.proxies[0].servers.last?.name == "s19999")

        let duplicates = text + "backend big2\n    server a 10.9.9.9:1\n    server a 10.9.9.9:2\n"
            + "    server b 10.9.9.9:3 id 7\n    server c 10.9.9.9:4 id 7\nbackend p1999\n"
        do {
            _ = try ConfigLoader.parse(text: duplicates, file: "t.cfg")
            Issue.record("accepted")
        } catch {
            let n = 20_000 + 2_000 * 2 + 2
            #expect(error.errors.map(\.description) == [
                "t.cfg:\(n + 2): proxy 'big2', another server named 'a' was already defined at line \(n + 1), "
                    + "please use distinct names.",
                "t.cfg:\(n + 4): 'server big2/c' : custom id 7 already used at t.cfg:\(n + 3) ('server b')",
                "t.cfg:\(n + 5): backend 'p1999' has the same name as backend 'p1999' declared at t.cfg:\(n - 2).",
            ])
        }
    }
}
