import Splicer
import Testing
@testable import gproxy

/// HAProxy's server-state file: parsed as `show servers state` prints it, applied per HAProxy's rules.
@Suite struct ServerStateFileTests {
    static let header = ServerStateLine.header

    /// Lines as HAProxy 2.6 writes them (`show servers state`), for backend `pg` with three servers.
    static let text = """
        1
        \(header)
        3 pg 1 pg1 127.0.0.1 2 0 1 1 120 6 3 4 6 0 0 0 - 5432 - 0 0 - - 0
        3 pg 2 pg2 127.0.0.1 0 0 1 1 12 8 2 0 6 0 0 0 - 5433 - 0 0 - - 0
        3 pg 3 pg3 127.0.0.1 2 1 7 1 3 6 3 4 14 0 0 0 - 5434 - 0 0 - - 0
        3 pg 4 pg4 broken line
        """

    static func servers(disabledThird: Bool = false) throws -> [ServerHealth] {
        let config = try parseOK("""
            backend pg
                default-server check rise 2 fall 3
                server pg1 127.0.0.1:5432
                server pg2 127.0.0.1:5433
                server pg3 127.0.0.1:5434 \(disabledThird ? "disabled" : "")
                server pg9 127.0.0.1:5439

            """)
        let p = try #require(config.proxy(named: "pg"))
        return p.servers.enumerated().map { s, sc in
            ServerHealth(backend: 0, server: s, backendName: "pg", config: sc,
                         checkAddress: SocketAddress(ip: sc.host, port: sc.port), httpCheck: nil, expects: [],
                         timeoutCheck: nil, timeoutConnect: nil, now: 0)
        }
    }

    static func addresses(_ servers: [ServerHealth]) -> [SocketAddress?] {
        servers.map { SocketAddress(ip: $0.config.host, port: $0.config.port) }
    }

    @Test func parsesHAProxysFormatAndSkipsBrokenLines() {
        let file = ServerStateFile.parse(Self.text)
        #expect(file.entries.map(\.server) == ["pg1", "pg2", "pg3"])
        #expect(file.entries[1].opState == 0 && file.entries[2].adminBits == 1 && file.entries[2].userWeight == 7)
        #expect(file.entries.map(\.port) == [5432, 5433, 5434])
        #expect(file.skippedLines == [6])
        // Not version 1: nothing is trusted.
        #expect(ServerStateFile.parse("2\n" + Self.text.split(separator: "\n").dropFirst().joined(separator: "\n")).entries.isEmpty)
    }

    @Test func appliesHealthMaintenanceAndWeight() throws {
        let servers = try Self.servers()
        #expect(servers.allSatisfy { $0.state.running })  // HAProxy 2.6 start: every checked server UP
        let applied = ServerStateFile.parse(Self.text).apply(to: servers, backendName: "pg",
                                                            addresses: Self.addresses(servers), now: 5)
        #expect(applied == ["pg1", "pg2", "pg3"])
        #expect(servers[0].state.running && servers[0].state.health == 4)
        #expect(!servers[1].state.running && servers[1].state.health == 0)  // saved DOWN: starts DOWN
        #expect(servers[2].state.admin == .maint && servers[2].userWeight == 7)
        #expect(servers[3].state.running && servers[3].state.admin == .ready)  // not in the file: untouched
        // Another backend's lines never apply.
        let other = try Self.servers()
        #expect(ServerStateFile.parse(Self.text).apply(to: other, backendName: "pg-ro", addresses: Self.addresses(other), now: 5).isEmpty)
    }

    @Test func aServerPointedElsewhereOrReweightedKeepsTheNewConfig() throws {
        let servers = try Self.servers()
        var addresses = Self.addresses(servers)
        addresses[1] = SocketAddress(ip: "127.0.0.2", port: 5433)  // pg2 now names another node
        var text = Self.text.replacingOccurrences(of: "3 pg 3 pg3 127.0.0.1 2 1 7 1", with: "3 pg 3 pg3 127.0.0.1 2 0 7 5")
        text += "\n"
        ServerStateFile.parse(text).apply(to: servers, backendName: "pg", addresses: addresses, now: 5)
        #expect(servers[1].state.running)
        #expect(servers[2].userWeight == 1)  // saved for a configured weight of 5, the config now says 1
    }

    @Test func maintenanceFromADisabledLineFollowsTheNewConfig() throws {
        // 0x04: the old config said `disabled`; the new one does not, so the server is back.
        let text = Self.text.replacingOccurrences(of: "3 pg 3 pg3 127.0.0.1 2 1 7 1", with: "3 pg 3 pg3 127.0.0.1 2 4 1 1")
        let servers = try Self.servers()
        ServerStateFile.parse(text).apply(to: servers, backendName: "pg", addresses: Self.addresses(servers), now: 5)
        #expect(servers[2].state.admin == .ready)
        let stillDisabled = try Self.servers(disabledThird: true)
        ServerStateFile.parse(text).apply(to: stillDisabled, backendName: "pg", addresses: Self.addresses(stillDisabled), now: 5)
        #expect(stillDisabled[2].state.admin == .maint)
    }

    @Test func filePathsFollowHAProxysRules() throws {
        let config = try parseOK("""
            global
                server-state-base /var/lib/gproxy
                server-state-file global.state
            defaults
                load-server-state-from-file global
            backend a
            backend b
                load-server-state-from-file local
            backend c
                load-server-state-from-file local
                server-state-file-name /etc/c.state
            backend d
                load-server-state-from-file none

            """)
        func path(_ name: String) throws -> String? {
            let p = try #require(config.proxy(named: name))
            return ServerStateFile.path(load: p.loadServerState, fileName: p.serverStateFileName, backend: p.name,
                                        global: config.global)
        }
        #expect(try path("a") == "/var/lib/gproxy/global.state")
        #expect(try path("b") == "/var/lib/gproxy/b")
        #expect(try path("c") == "/etc/c.state")
        #expect(try path("d") == nil)
    }
}
