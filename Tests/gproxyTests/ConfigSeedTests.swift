import Testing
@testable import gproxy

/// The seed haproxy.cfg (openGauss + Patroni blog post), with ip1..ip4 filled in as loopback ports.
let seedConfig = """
listen opengauss  # 用于主机
    bind *:5000   #开放的端口之一，用于连接主机
    option httpchk
     # 开启对后端服务器的健康检测，接受健康监测[check]
    http-check expect status 200
    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions
    server opengauss_ip1_port1 127.0.0.1:45001 maxconn 100 check port 8008
    server opengauss_ip2_port2 127.0.0.1:45002 maxconn 100 check port 8008
    server opengauss_ip3_port3 127.0.0.1:45003 maxconn 100 check port 8008
    server opengauss_ip4_port4 127.0.0.1:45004 maxconn 100 check port 8008

listen opengauss_balance  #用于备机
    bind *:5001           #开放的端口之一，用于连接备机
        mode tcp
        option tcplog
        balance roundrobin  #balance定义负载均衡算法
    option httpchk OPTIONS /replica
    http-check expect status 200
    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions
    server opengauss_ip1_port1 127.0.0.1:45001 maxconn 100 check port 8008 inter 5000 rise 2 fall 2
    server opengauss_ip2_port2 127.0.0.1:45002 maxconn 100 check port 8008 inter 5000 rise 2 fall 2
    server opengauss_ip3_port3 127.0.0.1:45003 maxconn 100 check port 8008 inter 5000 rise 2 fall 2
    server opengauss_ip4_port4 127.0.0.1:45004 maxconn 100 check port 8008 inter 5000 rise 2 fall 2

listen stats  #定义一个名为stats的部分
    mode http
    # 定义为HTTP模式
    bind *:7000  #开放的端口之一，用于监控
    # 定义监听的套接字
    stats enable
    # stats是HAProxy的一个统计页面的套接字
    stats uri /
    # 设置统计页面的uri为/

"""

@Suite struct ConfigSeedTests {
    let config: GProxyConfig

    init() throws {
        config = try ConfigLoader.parse(text: seedConfig, file: "seed.cfg")
    }

    @Test func threeListenSectionsInOrder() {
        #expect(config.proxies.map(\.name) == ["opengauss", "opengauss_balance", "stats"])
        #expect(config.proxies.map(\.kind) == [.listen, .listen, .listen])
        #expect(config.proxies.map(\.line) == [1, 12, 25])
        #expect(config.proxies.map(\.binds) == [
            [BindAddress(host: "0.0.0.0", port: 5000)],
            [BindAddress(host: "0.0.0.0", port: 5001)],
            [BindAddress(host: "0.0.0.0", port: 7000)],
        ])
    }

    @Test func primaryListenUsesDefaultServerSettings() throws {
        let rw = try #require(config.proxy(named: "opengauss"))
        #expect(rw.mode == .tcp)
        #expect(rw.balance == .roundrobin)
        #expect(rw.tcplog == false)
        #expect(rw.httpCheck == HTTPCheckRequest())
        #expect(rw.httpCheck?.requestBytes == "OPTIONS / HTTP/1.0\r\n\r\n")
        #expect(rw.httpCheckExpects == [HTTPCheckExpect(matcher: .status([200...200]))])
        #expect(rw.timeouts == ProxyTimeouts())
        #expect(rw.retries == 3)
        #expect(rw.servers.count == 4)
        let s1 = rw.servers[0]
        #expect(s1.name == "opengauss_ip1_port1")
        #expect(s1.host == "127.0.0.1")
        #expect(s1.port == 45001)
        #expect(s1.line == 7)
        #expect(s1.check)
        #expect(s1.checkPort == 8008)
        #expect(s1.inter == 3000)
        #expect(s1.rise == 2)
        #expect(s1.fall == 3)
        #expect(s1.maxconn == 100)
        #expect(s1.weight == 1)
        #expect(s1.shutdownSessionsOnDown)
        #expect(s1.initState == .haproxyDefault)
        #expect(rw.servers.map(\.port) == [45001, 45002, 45003, 45004])
    }

    @Test func replicaListenOverridesPerServer() throws {
        let ro = try #require(config.proxy(named: "opengauss_balance"))
        #expect(ro.tcplog)
        #expect(ro.balance == .roundrobin)
        #expect(ro.httpCheck?.requestBytes == "OPTIONS /replica HTTP/1.0\r\n\r\n")
        #expect(ro.httpCheckExpects == [HTTPCheckExpect(matcher: .status([200...200]))])
        for server in ro.servers {
            #expect(server.inter == 5000)
            #expect(server.rise == 2)
            #expect(server.fall == 2)
            #expect(server.checkPort == 8008)
            #expect(server.maxconn == 100)
            #expect(server.shutdownSessionsOnDown)
        }
    }

    @Test func statsListen() throws {
        let stats = try #require(config.proxy(named: "stats"))
        #expect(stats.mode == .http)
        #expect(stats.stats == StatsConfig(enabled: true, uri: "/"))
        #expect(stats.servers.isEmpty)
        #expect(stats.targetBackendName == "stats")
    }

    @Test func warningsMatchHAProxyCheck() {
        #expect(config.warnings.map(\.description) == [
            "seed.cfg:1: missing timeouts for proxy 'opengauss'.",
            "seed.cfg:12: missing timeouts for proxy 'opengauss_balance'.",
            "seed.cfg:12: log format ignored for proxy 'opengauss_balance' since it has no log address.",
            "seed.cfg:25: missing timeouts for proxy 'stats'.",
        ])
    }
}
