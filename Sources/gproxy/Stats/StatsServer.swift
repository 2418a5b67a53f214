import CEpoll
import Glibc
import Splicer

/// The HTTP server of a stats listener, on the control loop: non-blocking, edge-triggered, one
/// request per connection. It takes no lock a relay worker takes: it only calls the `snapshot`
/// closure, which reads published snapshots and counters.
///
/// - Each connection buffers at most `StatsHTTPHandler.maxRequestBytes` (+ one read) of request;
///   the handler answers 414/431 beyond the limits.
/// - `timeout client` of the stats proxy bounds a connection's whole life (request and response);
///   unset means 10 s here, unlike HAProxy's infinite default, so slow scrapers cannot pile up.
///   A client cut before its request is complete gets a best-effort 408.
/// - After the answer the connection is half-closed and its input drained until the client closes
///   (lingering close, as HAProxy): closing with unread input would send RST and destroy the part
///   of the answer the client has not read yet.
/// - Accepting stops on EMFILE/ENFILE and is retried on a timer (`LoopListener`).
final class StatsServer: @unchecked Sendable {
    /// Used when the stats proxy has no `timeout client`.
    static let defaultClientTimeoutMs = 10_000
    /// Connections beyond this are closed at accept.
    static let maxConnections = 10_000
    /// How long a drained connection may linger for the client to close.
    static let lingerMs = 1000

    private let addresses: [(host: String, port: UInt16)]
    let config: StatsConfig
    let timeoutMs: Int
    let snapshot: @Sendable () -> StatsSnapshot
    let control: ControlLoop
    var loop: EventLoop { control.loop }
    /// Serves `stats admin` form posts; set before `start()`.
    var admin: (any RuntimeAdmin)?
    /// The proxy's `monitor-uri` endpoint, answered before the stats page; set before `start()`.
    var monitor: MonitorEndpoint?
    /// Set at `stop()` (soft stop): a monitor request still being read is answered 503.
    private(set) var stopping = false
    /// Loop thread only, after `start()`.
    private var listeners: [LoopListener] = []
    var connections = 0
    /// Shared by the connections (loop thread only).
    var readBuffer = [UInt8](repeating: 0, count: 16 * 1024)
    private(set) var boundPorts: [UInt16] = []
    /// Sockets handed over by the process this one replaces, per address (nil: bind anew).
    private var inheritedFDs: [Int32?]

    init(bind addresses: [(host: String, port: UInt16)], config: StatsConfig, clientTimeoutMs: Int?,
         inherited: InheritedListeners? = nil, control: ControlLoop,
         snapshot: @escaping @Sendable () -> StatsSnapshot) {
        self.addresses = addresses
        self.inheritedFDs = addresses.map { a in
            SocketAddress(ip: Self.ip(a.host), port: a.port).flatMap { inherited?.take($0) }
        }
        self.config = config
        self.timeoutMs = max(1, clientTimeoutMs ?? Self.defaultClientTimeoutMs)
        self.snapshot = snapshot
        self.control = control
    }

    var adminEnabled: Bool { config.admin }

    /// The answer to the request bytes read so far (nil: incomplete): the monitor endpoint first,
    /// then the stats page, or HAProxy's 503 on a monitor-only listener.
    func answer(_ input: [UInt8]) -> [UInt8]? {
        if let monitor {
            switch MonitorHTTPHandler.handle(input, uri: monitor.uri, otherURIs: config.enabled ? .stats : .unavailable,
                                             stopping: stopping, failing: monitor.failing) {
            case .incomplete: return nil
            case .response(let bytes): return bytes
            case .other: break  // the stats page, or its 400/414/431 for a malformed request
            }
        }
        return StatsHTTPHandler.handle(input, config: config, admin: admin, snapshot: snapshot)
    }

    /// Binds (or takes the inherited sockets) and starts accepting on the control loop.
    func start() throws {
        try control.sync { [self] in
            guard listeners.isEmpty else { return }
            var fds: [Int32] = []
            do {
                for (k, a) in addresses.enumerated() {
                    if let fd = inheritedFDs[k] { fds.append(fd) } else { fds.append(try Self.listen(host: a.host, port: a.port)) }
                }
                inheritedFDs = []
                for fd in fds {
                    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                    let l = LoopListener(fd: fd, loop: loop) { [unowned self] c in
                        if connections >= Self.maxConnections { _ = cepoll_close(c) } else { StatsConnection.start(fd: c, server: self) }
                    }
                    try l.register()
                    listeners.append(l)
                }
                boundPorts = fds.map { Socket.localAddress(of: $0)?.port ?? 0 }
            } catch {
                for l in listeners { l.close() }
                listeners = []
                for fd in fds where !listeners.contains(where: { $0.fd == fd }) { _ = cepoll_close(fd) }
                throw error
            }
        }
    }

    /// Stops accepting and closes the listening sockets; connections in progress finish.
    func stop() {
        control.sync { [self] in
            stopping = true
            for l in listeners { l.close() }
            listeners = []
            for case let fd? in inheritedFDs { _ = cepoll_close(fd) }
            inheritedFDs = []
        }
    }

    /// Duplicates of the listening sockets (close-on-exec), for the process replacing this one.
    func duplicateListeners() -> [Int32] {
        (try? control.sync { [self] in
            listeners.compactMap { l in
                let copy = fcntl(l.fd, F_DUPFD_CLOEXEC, 0)
                return copy >= 0 ? copy : nil
            }
        }) ?? []
    }

    private static func ip(_ host: String) -> String { (host.isEmpty || host == "*") ? "0.0.0.0" : host }

    /// A listening TCP socket: `host` "", "*" or "0.0.0.0" is every IPv4 address, "::" every IPv6
    /// one; port 0 picks a free port.
    private static func listen(host: String, port: UInt16, backlog: Int32 = 1024) throws(SystemCallError) -> Int32 {
        let ip = Self.ip(host)
        guard let address = SocketAddress(ip: ip, port: port) else { throw SystemCallError("address \(ip)", code: EINVAL) }
        return try SystemCallError.named("bind \(address)") { () throws(Errno) in
            // SO_REUSEPORT as HAProxy: a new process can bind while the old one still listens.
            try Socket.listen(on: address, reusePort: true, backlog: backlog)
        }
    }
}

/// One client of a stats server: read the request, write the answer, drain, close.
private final class StatsConnection: EventHandler {
    private enum Phase { case reading, writing, draining }

    private let fd: Int32
    private unowned let server: StatsServer
    private var token: LoopToken?
    private var phase = Phase.reading
    private var input: [UInt8] = []
    private var output: [UInt8] = []
    private var sent = 0
    private var deadline: UInt64?

    private init(fd: Int32, server: StatsServer) {
        self.fd = fd
        self.server = server
    }

    static func start(fd: Int32, server: StatsServer) {
        let c = StatsConnection(fd: fd, server: server)
        let ev = CEPOLL_EPOLLIN | CEPOLL_EPOLLOUT | CEPOLL_EPOLLRDHUP | CEPOLL_EPOLLET
        guard let token = try? server.loop.register(fd, events: ev, c) else {
            _ = cepoll_close(fd)
            return
        }
        c.token = token
        server.connections += 1
        c.deadline = server.loop.schedule(afterMs: server.timeoutMs) { [c] in c.expired() }
        // Data often arrives with the connection; read now rather than wait for the edge.
        c.handle(events: CEPOLL_EPOLLIN, tag: 0)
    }

    override func handle(events: UInt32, tag _: UInt32) {
        switch phase {
        case .reading: read()
        case .writing: write()
        case .draining: drain()
        }
    }

    private func read() {
        var eof = false
        readLoop: while input.count <= StatsHTTPHandler.maxRequestBytes {
            switch IOResult(server.readBuffer.withUnsafeMutableBytes { cepoll_read(fd, $0.baseAddress, UInt($0.count)) }) {
            case .done(let n): input.append(contentsOf: server.readBuffer[0..<n])
            case .end: eof = true; break readLoop
            case .wouldBlock: break readLoop
            case .interrupted: continue
            case .failed: close(); return
            }
        }
        if let response = server.answer(input) {
            respond(response)
        } else if eof || input.count > StatsHTTPHandler.maxRequestBytes {
            close()
        }
    }

    private func respond(_ bytes: [UInt8]) {
        output = bytes
        input = []
        phase = .writing
        write()
    }

    private func write() {
        while sent < output.count {
            switch IOResult(output.withUnsafeBytes { cepoll_write(fd, $0.baseAddress! + sent, UInt(output.count - sent)) }) {
            case .done(let n): sent += n
            case .interrupted: continue
            case .wouldBlock: return
            case .end, .failed:
                close()
                return
            }
        }
        output = []
        // Half-close: the client reads the whole answer, then its EOF ends the connection.
        _ = cepoll_shutdown(fd, Int32(SHUT_WR))
        phase = .draining
        if let deadline { server.loop.cancel(timer: deadline) }
        deadline = server.loop.schedule(afterMs: StatsServer.lingerMs) { [self] in close() }
        drain()
    }

    private func drain() {
        while true {
            switch IOResult(server.readBuffer.withUnsafeMutableBytes { cepoll_read(fd, $0.baseAddress, UInt($0.count)) }) {
            case .done, .interrupted: continue
            case .wouldBlock: return
            case .end, .failed:
                close()  // EOF or error: the client has everything it will read
                return
            }
        }
    }

    private func expired() {
        deadline = nil
        if phase == .reading {
            let r = StatsHTTPHandler.error(408)
            _ = r.withUnsafeBytes { cepoll_write(fd, $0.baseAddress, UInt(r.count)) }
        }
        close()
    }

    private func close() {
        guard let token else { return }
        if let deadline { server.loop.cancel(timer: deadline) }
        deadline = nil
        server.loop.deregister(fd, token)
        self.token = nil
        server.connections -= 1
        _ = cepoll_close(fd)
    }
}
