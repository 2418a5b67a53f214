import CEpoll
import Foundation
import Glibc
import Splicer
import Synchronization
@testable import gproxy

/// Runs a whole gproxy (engine, checker, stats) in-process from config text, for end-to-end tests
/// against the simulated Patroni cluster. Ports are free ones picked by binding port 0.
final class RuntimeHarness: @unchecked Sendable {
    let runtime: ProxyRuntime
    let config: GProxyConfig

    /// `beforeStart` runs once the listeners are bound but before any thread runs (e.g. to queue
    /// connections in the kernel backlog, as a reload's inherited sockets have them).
    init(_ text: String, workers: Int = 2, beforeStart: (ProxyRuntime) throws -> Void = { _ in }) throws {
        config = try ConfigLoader.parse(text: text, file: "test.cfg")
        runtime = try ProxyRuntime(config: config, quiet: true, workers: workers)
        try beforeStart(runtime)
        try runtime.start()
    }

    func stop() {
        runtime.engine.stop()
        runtime.engine.wait()
        runtime.stopAuxiliaries()
    }

    /// Connects through `port` and returns the node name from the simulated database's banner.
    static func nodeBehind(port: UInt16) -> String? {
        guard let c = try? SimulatedTestClient(port: port) else { return nil }
        guard let line = c.readLine(timeoutMs: 2000) else { return nil }
        // "gproxy-demo node=pg1 role=primary port=..."
        return line.split(separator: " ").first { $0.hasPrefix("node=") }.map { String($0.dropFirst(5)) }
    }

    /// A port for a listener a test is about to start, from a private range below the kernel's
    /// ephemeral range (32768-60999): never handed out twice in this process, and never one the kernel
    /// can give to a port-0 bind or an outgoing connection meanwhile. (gproxy listens with
    /// SO_REUSEPORT, as HAProxy does, so two test proxies on one port would silently share traffic.)
    static func freePort() -> UInt16 {
        while true {
            let candidate = nextPort.wrappingAdd(1, ordering: .relaxed).oldValue
            let port = UInt16(21_000 + candidate % 11_000)
            if isFree(port) { return port }
        }
    }

    private static let nextPort = Atomic<Int>(Int(getpid()) % 11_000)

    private static func isFree(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// Polls `condition` every 10 ms for up to `ms`.
    static func eventually(_ ms: Int = 5000, _ condition: () -> Bool) -> Bool {
        let deadline = Clock.nowMs() + UInt64(ms)
        while Clock.nowMs() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    func server(_ backend: String, _ name: String) -> ServerStats? {
        runtime.snapshot().proxies.first { $0.name == backend }?.servers.first { $0.name == name }
    }

    /// One `listen rw` with `option httpchk` in front of one simulated member.
    static func oneCheckedMember(_ m: SimulatedMember, port: UInt16, options: String) -> String {
        """
        listen rw
            bind 127.0.0.1:\(port)
            option httpchk
            server \(m.name) 127.0.0.1:\(m.dbPort) check port \(m.apiPort) \(options)

        """
    }

    /// The seed's two listens in front of a simulated cluster, with fast checks.
    static func seedConfig(_ cluster: SimulatedCluster, rw: UInt16, ro: UInt16, inter: String = "100ms",
                           extraServerOptions: String = "") -> String {
        var t = """
        listen opengauss
            bind 127.0.0.1:\(rw)
            option httpchk
            http-check expect status 200
            default-server inter \(inter) fall 3 rise 2 on-marked-down shutdown-sessions

        """
        for m in cluster.members {
            t += "    server \(m.name) 127.0.0.1:\(m.dbPort) maxconn 100 check port \(m.apiPort) \(extraServerOptions)\n"
        }
        t += """

        listen opengauss_balance
            bind 127.0.0.1:\(ro)
            mode tcp
            balance roundrobin
            option httpchk OPTIONS /replica
            http-check expect status 200
            default-server inter \(inter) fall 3 rise 2 on-marked-down shutdown-sessions

        """
        for m in cluster.members {
            t += "    server \(m.name) 127.0.0.1:\(m.dbPort) maxconn 100 check port \(m.apiPort) inter \(inter) rise 2 fall 2\n"
        }
        return t
    }
}

extension SimulatedTestClient {
    /// Reads up to the first LF (the simulated database's banner).
    func readLine(timeoutMs: Int) -> String? {
        var out: [UInt8] = []
        while !out.contains(10) {
            guard case .success(let chunk) = readChunk(timeoutMs: timeoutMs), !chunk.isEmpty else { return nil }
            out += chunk
        }
        return String(decoding: out.prefix { $0 != 10 }, as: UTF8.self)
    }
}
