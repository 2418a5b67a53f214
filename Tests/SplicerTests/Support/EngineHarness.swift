@testable import Splicer

/// Starts an engine with one frontend on 127.0.0.1:0 in front of the given test servers.
final class EngineHarness: @unchecked Sendable {
    let engine: Engine
    let port: UInt16
    /// The second frontend's port (same backend), when one was asked for.
    let port2: UInt16?

    init(servers: [UInt16], workers: Int = 2, balance: BalanceAlgorithm = .roundrobin, maxconn: [Int]? = nil,
         clientTimeout: Int? = nil, clientFinTimeout: Int? = nil, serverTimeout: Int? = nil, connectTimeout: Int? = nil, queueTimeout: Int? = nil,
         retries: Int = 3, redispatch: Bool = false, frontendMaxconn: Int = 0, globalMaxconn: Int = 0,
         weights: [Int]? = nil, maxqueue: [Int]? = nil, alwaysSplice: Bool = false, secondFrontendMaxconn: Int? = nil,
         maxPipes: Int = 0, deferAccept: Bool = false, logger: (@Sendable (SessionRecord) -> Void)? = nil,
         acceptProbe: (@Sendable (AcceptCheckpoint) -> Void)? = nil) throws {
        let specs = servers.enumerated().map { i, p in
            ServerSpec(name: "s\(i + 1)", address: SocketAddress(ip: "127.0.0.1", port: p)!,
                       maxconn: maxconn?[i] ?? 0, maxqueue: maxqueue?[i] ?? 0, weight: weights?[i] ?? 1)
        }
        var frontends = [FrontendSpec(name: "fe", binds: [SocketAddress(ip: "127.0.0.1", port: 0)!],
                                      deferAccept: [deferAccept], maxconn: frontendMaxconn, backend: 0, clientTimeout: clientTimeout,
                                      clientFinTimeout: clientFinTimeout,
                                      logSessions: logger != nil, alwaysSpliceRequest: alwaysSplice,
                                      alwaysSpliceResponse: alwaysSplice)]
        if let second = secondFrontendMaxconn {
            frontends.append(FrontendSpec(name: "fe2", binds: [SocketAddress(ip: "127.0.0.1", port: 0)!],
                                          maxconn: second, backend: 0, logSessions: logger != nil))
        }
        let spec = EngineSpec(
            workers: workers, globalMaxconn: globalMaxconn, frontends: frontends,
            backends: [BackendSpec(name: "be", servers: specs, balance: balance, connectTimeout: connectTimeout,
                                   serverTimeout: serverTimeout, queueTimeout: queueTimeout, retries: retries,
                                   redispatch: redispatch)],
            maxPipes: maxPipes)
        engine = try Engine(spec: spec)
        engine.sessionLogger = logger
        engine.acceptProbe = acceptProbe
        port = engine.boundAddresses[0][0].port
        port2 = engine.boundAddresses.count > 1 ? engine.boundAddresses[1][0].port : nil
        try engine.start()
    }

    func connect() -> BlockingSocket? { BlockingSocket.connect(port: port) }

    func stop() {
        engine.stop()
        engine.wait()
    }

    /// Polls `condition` for up to `ms` (state changes cross threads; tests wait for them, bounded).
    static func eventually(_ ms: Int = 3000, _ condition: () -> Bool) -> Bool {
        let deadline = Clock.nowMs() + UInt64(ms)
        while Clock.nowMs() < deadline {
            if condition() { return true }
            usleep(5000)
        }
        return condition()
    }
}

import Glibc
