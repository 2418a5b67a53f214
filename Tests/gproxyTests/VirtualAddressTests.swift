import Foundation
import Glibc
import Testing
@testable import gproxy

/// Two gproxy nodes behind keepalived: global `node` names this node and global `vip` lists the
/// virtual addresses whose holder the stats page, `show info` and /metrics report.
@Suite struct VirtualAddressTests {
    @Test func canonicalForms() {
        #expect(VirtualAddressWatch.canonical("198.18.0.100") == "198.18.0.100")
        #expect(VirtualAddressWatch.canonical("::0001") == "::1")
        #expect(VirtualAddressWatch.canonical("2001:DB8:0:0::7") == "2001:db8::7")
        #expect(VirtualAddressWatch.canonical("198.18.0.300") == nil)
        #expect(VirtualAddressWatch.canonical("vip.example") == nil)
    }

    /// 127.0.0.1 is on `lo` in every network namespace; 198.51.100.7 (TEST-NET-2) is on none here.
    @Test func heldMeansOnOneOfThisHostsInterfaces() {
        let h = VirtualAddressWatch.holdings(["127.0.0.1", "198.51.100.7"])
        #expect(h == [.init(address: "127.0.0.1", held: true), .init(address: "198.51.100.7", held: false)])
        #expect(VirtualAddressWatch.holdings([]).isEmpty)
    }

    @Test func configKeywords() throws {
        let c = try ConfigLoader.parse(text: "global\n  node edge-1.dc_2\n  vip 198.18.0.100\n  vip ::0001 198.18.0.100\n", file: "t.cfg")
        #expect(c.global.nodeName == "edge-1.dc_2")
        #expect(c.global.virtualAddresses == ["198.18.0.100", "::1"])
    }

    /// Refused as HAProxy 2.6.12 refuses `node` (its words), and a `vip` that is no address.
    @Test func badNodeAndVipLinesAreRefused() {
        for (text, message) in [
            ("global\n  node a/b\n", "t.cfg:2: 'node' requires valid node name - non-empty string with digits(0-9), letters(A-Z, a-z), dot(.), hyphen(-) or underscore(_)."),
            ("global\n  node a b\n", "t.cfg:2: 'node' cannot handle unexpected argument 'b'."),
            ("global\n  vip\n", "t.cfg:2: 'vip' expects one or more IPv4 or IPv6 addresses."),
            ("global\n  vip 198.18.0.1 vip.example\n", "t.cfg:2: 'vip': 'vip.example' is not an IPv4 or IPv6 address."),
        ] {
            do {
                _ = try ConfigLoader.parse(text: text, file: "t.cfg")
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.errors.map(\.description) == [message])
            }
        }
    }

    @Test func renderedOnEveryStatsInterface() {
        var snap = StatsFixtures.snapshot
        snap.virtualAddresses = [.init(address: "198.18.0.100", held: true), .init(address: "198.18.0.101", held: false)]
        let html = StatsHTML.render(snap)
        #expect(html.contains("vip 198.18.0.100 = <b>held by this node</b><br>"))
        #expect(html.contains("vip 198.18.0.101 = not on this node<br>"))
        let metrics = StatsPrometheus.render(snap)
        #expect(metrics.contains("gproxy_vip_held{address=\"198.18.0.100\"} 1\n"))
        #expect(metrics.contains("gproxy_vip_held{address=\"198.18.0.101\"} 0\n"))
        #expect(!StatsPrometheus.render(StatsFixtures.snapshot).contains("gproxy_vip_held"))
    }

    /// A running gproxy: `show info` names the node and says which configured VIPs are on this host.
    @Test func showInfoOfARunningProcess() throws {
        let cluster = try SimulatedCluster(memberCount: 1)
        defer { cluster.stop() }
        let path = RuntimeSocketTests.socketPath()
        defer { unlink(path) }
        let text = RuntimeSocketTests.config(socket: path, port: RuntimeHarness.freePort(), backendPort: cluster.members[0].dbPort)
            .replacingOccurrences(of: "    nbthread 1\n", with: "    nbthread 1\n    node edge-1\n    vip 198.51.100.7 127.0.0.1\n")
        let g = try GProxyProcess(config: text)
        defer { g.stop(); unlink(g.configPath) }
        #expect(RuntimeHarness.eventually { RuntimeSocketTests.pidFromShowInfo(path) == g.pid })
        let info = UnixClient.request(path, "show info\n") ?? ""
        #expect(info.contains("node: edge-1\n"), "\(info)")
        #expect(info.contains("Vips: 198.51.100.7 127.0.0.1\n"))
        #expect(info.contains("VipsHeld: 127.0.0.1\n"))
    }
}
