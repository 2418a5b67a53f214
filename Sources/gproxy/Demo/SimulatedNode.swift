// The "database" port of one simulated member: it greets each client with a one-line banner that
// says which node answered and in which role, then echoes every byte back.
//
// This is what makes routing visible in the demo (`nc 127.0.0.1 5000` shows the primary's banner)
// and what the proxy's end-to-end tests splice through. The role is read from the cluster model at
// connect time, so after a switchover new connections report the new role while old ones keep going
// (until the proxy's shutdown-sessions or `stopDatabase(resetConnections:)` ends them).
//
// Per connection:  banner → echo loop ─┬─ client EOF  → finish echoing, FIN, close
//                                      ├─ client error → close
//                                      └─ reset        → close with RST (SO_LINGER 0)

/// A database-like TCP server for one cluster member.
final class SimulatedNode: @unchecked Sendable {
    let name: String
    private let role: @Sendable () -> SimulatedRole
    private var server: DemoTCPServer!

    /// - Parameter role: asked on every connect; the cluster passes the member's current role.
    init(name: String, role: @escaping @Sendable () -> SimulatedRole) {
        self.name = name
        self.role = role
        // A strong capture: the node lives until stop(), whoever else drops it (stop() breaks the cycle).
        server = DemoTCPServer(label: "db-\(name)", greeting: { [unowned self] in banner() }) { [self] conn in serve(conn) }
    }

    /// The banner line sent to a client of this node, newline included.
    func banner() -> String { "gproxy-demo node=\(name) role=\(role().rawValue) port=\(port)\n" }

    /// Opens the DB port (0 = any free port, or the port of an earlier start); returns it.
    @discardableResult
    func start(port: UInt16 = 0) throws -> UInt16 { try server.start(port: port) }

    /// Closes the DB port so connects are refused; optionally resets the established connections.
    func stopDatabase(resetConnections: Bool = false) {
        server.stopListening()
        if resetConnections { server.resetConnections() }
    }

    /// Resets every established client connection (peers see ECONNRESET), keeping the port open.
    func resetConnections() { server.resetConnections() }

    /// Closes the port and every connection, and waits for the connection threads. Final.
    func stop() { server.stop() }

    var port: UInt16 { server.port }
    var isListening: Bool { server.isListening }
    var openConnections: Int { server.openConnections }

    private func serve(_ conn: DemoConnection) {
        guard conn.write(conn.greeting ?? banner()) else { return }
        while true {
            guard let chunk = conn.read() else { return }  // error or reset: the server closes
            if chunk.isEmpty {
                // Half-close: everything received has already been echoed, so answer with our FIN.
                conn.shutdownWrite()
                return
            }
            guard conn.write(chunk) else { return }
        }
    }
}
