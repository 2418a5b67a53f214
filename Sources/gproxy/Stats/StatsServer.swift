import CEpoll
import Glibc
import Splicer

/// The HTTP server of the stats listener: one thread (`gproxy-stats`) with its own epoll set,
/// edge-triggered, non-blocking, one request per connection. It takes no lock a relay worker
/// takes: it only calls the `snapshot` closure, whose provider copies counters.
///
/// - Each connection buffers at most `StatsHTTPHandler.maxRequestBytes` (+ one read) of request;
///   the handler answers 414/431 beyond the limits.
/// - `timeout client` of the stats proxy bounds a connection's whole life (request and response);
///   unset means 10 s here, unlike HAProxy's infinite default, so slow scrapers cannot pile up.
///   A client cut before its request is complete gets a best-effort 408.
/// - The server owns the listening sockets, including ones inherited on reload, and closes them on `stop()`.
final class StatsServer: @unchecked Sendable {
    /// Used when the stats proxy has no `timeout client`.
    static let defaultClientTimeoutMs = 10_000
    /// Connections beyond this are closed at accept.
    static let maxConnections = 10_000

    private let addresses: [(host: String, port: UInt16)]
    private let config: StatsConfig
    private let timeoutMs: Int
    private let snapshot: @Sendable () -> StatsSnapshot
    private let lock = PThreadLock()
    /// Serves `stats admin` form posts; set before `start()` (the runtime is built after its servers).
    var admin: (any RuntimeAdmin)?
    // Guarded by `lock`.
    private var listenFDs: [Int32]
    private var ports: [UInt16] = []
    private var thread: pthread_t?
    private var wakeFD: Int32 = -1
    /// Sockets handed over by the process this one replaces, per address (nil: bind anew).
    private var inheritedFDs: [Int32?]

    init(bind addresses: [(host: String, port: UInt16)], config: StatsConfig, clientTimeoutMs: Int?,
         inherited: InheritedListeners? = nil, snapshot: @escaping @Sendable () -> StatsSnapshot) {
        self.addresses = addresses
        self.listenFDs = []
        self.inheritedFDs = addresses.map { a in
            SocketAddress(ip: Self.ip(a.host), port: a.port).flatMap { inherited?.take($0) }
        }
        self.config = config
        self.timeoutMs = max(1, clientTimeoutMs ?? Self.defaultClientTimeoutMs)
        self.snapshot = snapshot
    }

    var adminEnabled: Bool { config.admin }

    /// Ports actually bound, in the order of the addresses (useful with port 0).
    var boundPorts: [UInt16] { lock.withLock { ports } }

    /// Binds (if needed) and starts the loop thread. Throws on a bind or thread failure.
    func start() throws {
        try lock.withLock {
            guard thread == nil else { return }
            var fds = listenFDs
            do {
                for (k, a) in addresses.enumerated() {
                    if let fd = inheritedFDs[k] { fds.append(fd) } else { fds.append(try Self.listen(host: a.host, port: a.port)) }
                }
                inheritedFDs = []
                for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
                let loop = try StatsLoop(listeners: fds, timeoutMs: timeoutMs, config: config, admin: admin,
                                         snapshot: snapshot)
                wakeFD = loop.wakeFD
                listenFDs = fds
                ports = fds.map { Socket.localAddress(of: $0)?.port ?? 0 }
                thread = NamedThread.start(name: "gproxy-stats") { loop.run() }
            } catch {
                for fd in fds where !listenFDs.contains(fd) { _ = cepoll_close(fd) }
                throw error
            }
        }
    }

    /// Stops the loop, closes every connection and listening socket, and waits for the thread.
    func stop() {
        let t: pthread_t? = lock.withLock {
            let t = thread
            thread = nil
            if t != nil { _ = cepoll_eventfd_signal(wakeFD) }
            return t
        }
        if let t { NamedThread.join(t) }
        lock.withLock {
            for fd in listenFDs { _ = cepoll_close(fd) }
            listenFDs = []
        }
    }

    deinit {
        stop()
        for case let fd? in inheritedFDs { _ = cepoll_close(fd) }
    }

    /// Duplicates of the listening sockets (close-on-exec), for the process replacing this one.
    func duplicateListeners() -> [Int32] {
        lock.withLock { listenFDs.compactMap { fd in
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
            return copy >= 0 ? copy : nil
        } }
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

/// The loop's state; lives on the stats thread only.
private final class StatsLoop: @unchecked Sendable {
    private struct Conn {
        var generation: UInt32
        var input: [UInt8] = []
        var output: [UInt8]? = nil
        var sent = 0
        var deadline: UInt64
    }

    private static let wakeToken = UInt64.max
    private static let listenerBit: UInt64 = 1 << 62

    let wakeFD: Int32
    private let epfd: Int32
    private let listeners: [Int32]
    private let timeoutMs: Int
    private let config: StatsConfig
    private let admin: (any RuntimeAdmin)?
    private let snapshot: @Sendable () -> StatsSnapshot
    private var conns: [Int32: Conn] = [:]
    private var generation: UInt32 = 0
    private var readBuffer = [UInt8](repeating: 0, count: 16 * 1024)

    init(listeners: [Int32], timeoutMs: Int, config: StatsConfig, admin: (any RuntimeAdmin)?,
         snapshot: @escaping @Sendable () -> StatsSnapshot) throws {
        self.admin = admin
        epfd = try SystemCallError.check(cepoll_create(), "epoll_create")
        do {
            wakeFD = try SystemCallError.check(cepoll_eventfd(), "eventfd")
        } catch {
            _ = cepoll_close(epfd)
            throw error
        }
        self.listeners = listeners
        self.timeoutMs = timeoutMs
        self.config = config
        self.snapshot = snapshot
        try SystemCallError.check(cepoll_ctl(epfd, CEPOLL_CTL_ADD, wakeFD, CEPOLL_EPOLLIN, Self.wakeToken), "epoll_ctl")
        for (i, fd) in listeners.enumerated() {
            try SystemCallError.check(cepoll_ctl(epfd, CEPOLL_CTL_ADD, fd, CEPOLL_EPOLLIN | CEPOLL_EPOLLET,
                                               Self.listenerBit | UInt64(i)), "epoll_ctl")
        }
    }

    func run() {
        var events = [UInt32](repeating: 0, count: 256)
        var tokens = [UInt64](repeating: 0, count: 256)
        var running = true
        while running {
            let n = cepoll_wait(epfd, &events, &tokens, 256, waitTimeout())
            if n < 0 {
                if n == -EINTR { continue }
                break
            }
            for i in 0..<Int(n) {
                let token = tokens[i]
                if token == Self.wakeToken {
                    running = false
                } else if token & Self.listenerBit != 0 {
                    acceptAll(listeners[Int(token & 0xFFFF)])
                } else {
                    let fd = Int32(truncatingIfNeeded: token & 0xFFFF_FFFF)
                    guard let c = conns[fd], c.generation == UInt32(token >> 32) else { continue }
                    service(fd)
                }
            }
            expire()
        }
        for fd in conns.keys { _ = cepoll_close(fd) }
        conns = [:]
        _ = cepoll_close(wakeFD)
        _ = cepoll_close(epfd)
    }

    // MARK: - Events

    private func acceptAll(_ listener: Int32) {
        while true {
            var addr = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = cepoll_accept4(listener, &addr, &len)
            if fd < 0 {
                // EAGAIN: drained. EMFILE and friends: try again on the next event.
                return
            }
            if conns.count >= StatsServer.maxConnections {
                _ = cepoll_close(fd)
                continue
            }
            // 30 bits, so `generation << 32` never reaches `listenerBit` (bit 62) or `wakeToken`.
            generation = (generation &+ 1) & 0x3FFF_FFFF
            let deadline = cepoll_monotonic_ms() + UInt64(timeoutMs)
            conns[fd] = Conn(generation: generation, deadline: deadline)
            let token = UInt64(UInt32(bitPattern: fd)) | UInt64(generation) << 32
            let ev = CEPOLL_EPOLLIN | CEPOLL_EPOLLOUT | CEPOLL_EPOLLRDHUP | CEPOLL_EPOLLET
            if cepoll_ctl(epfd, CEPOLL_CTL_ADD, fd, ev, token) < 0 {
                close(fd)
                continue
            }
            // Data often arrives with the connection; read now rather than wait for the edge.
            service(fd)
        }
    }

    /// Reads what is available, answers once the request head is complete, writes what fits.
    private func service(_ fd: Int32) {
        guard var c = conns[fd] else { return }
        if c.output == nil {
            var eof = false
            readLoop: while c.input.count <= StatsHTTPHandler.maxRequestBytes {
                let r = readBuffer.withUnsafeMutableBytes { cepoll_read(fd, $0.baseAddress, UInt(16 * 1024)) }
                switch r {
                case 1...: c.input.append(contentsOf: readBuffer[0..<Int(r)])
                case 0: eof = true; break readLoop
                case Int(-EAGAIN): break readLoop
                case Int(-EINTR): continue
                default: close(fd); return
                }
            }
            let config = config, snapshot = snapshot, admin = admin
            if let response = StatsHTTPHandler.handle(c.input, config: config, admin: admin, snapshot: snapshot) {
                c.output = response
                c.input = []
            } else if eof || c.input.count > StatsHTTPHandler.maxRequestBytes {
                close(fd)
                return
            } else {
                conns[fd] = c
                return
            }
        }
        guard let out = c.output else { return }
        while c.sent < out.count {
            let w = out.withUnsafeBytes { cepoll_write(fd, $0.baseAddress! + c.sent, UInt(out.count - c.sent)) }
            if w > 0 {
                c.sent += Int(w)
            } else if w == Int(-EINTR) {
                continue
            } else if w == Int(-EAGAIN) {
                conns[fd] = c
                return
            } else {
                close(fd)
                return
            }
        }
        close(fd)
    }

    /// Cuts connections past their deadline; a half-received request gets a 408 first.
    private func expire() {
        let now = cepoll_monotonic_ms()
        var late: [Int32] = []
        for (fd, c) in conns where c.deadline <= now { late.append(fd) }
        for fd in late {
            if conns[fd]?.output == nil {
                let r = StatsHTTPHandler.error(408)
                _ = r.withUnsafeBytes { cepoll_write(fd, $0.baseAddress, UInt(r.count)) }
            }
            close(fd)
        }
    }

    /// Milliseconds until the earliest deadline, capped at one second.
    private func waitTimeout() -> Int32 {
        guard let first = conns.values.lazy.map(\.deadline).min() else { return 1000 }
        let now = cepoll_monotonic_ms()
        return first <= now ? 0 : Int32(min(1000, first - now))
    }

    private func close(_ fd: Int32) {
        conns[fd] = nil
        _ = cepoll_ctl(epfd, CEPOLL_CTL_DEL, fd, 0, 0)
        _ = cepoll_close(fd)
    }
}
