// A blocking, thread-per-connection TCP server on 127.0.0.1, shared by the simulated database
// port and the simulated Patroni REST API.
//
// Lifecycle of the listener:   stopped --start(port)--> listening --stopListening()--> stopped ...
// The port chosen by the first `start` (0 = let the kernel pick) is kept, so a restarted listener
// comes back on the same port, as a restarted Patroni or Postgres would.
//
// Ownership of fds: the accept thread owns the listening fd and closes it itself once told to stop;
// each connection thread owns its connection fd. Other threads only ever `shutdown()` those fds, and
// only while holding `lock` and while the fd is still registered, so an fd is never closed under a
// thread that might reuse its number.

#if canImport(Glibc)
import Glibc
#endif
import Splicer

/// One accepted connection. The handler reads and writes through it; the server closes it.
final class DemoConnection: @unchecked Sendable {
    let fd: Int32
    /// What the server's `greeting` said when this connection was accepted (nil without one).
    let greeting: String?
    private let lock = PThreadLock()
    private var resetRequested = false

    init(fd: Int32, greeting: String? = nil) {
        self.fd = fd
        self.greeting = greeting
    }

    /// Set by `resetConnections()`/`stop()`: the handler should give up, and the close becomes an RST.
    var isAborted: Bool { lock.withLock { resetRequested } }

    func markAborted() { lock.withLock { resetRequested = true } }

    /// Reads up to `max` bytes: an empty array means EOF, nil means error or abort.
    func read(max: Int = 16 * 1024) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: max)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
            if n < 0 && errno == EINTR { continue }
            if isAborted || n < 0 { return nil }
            return Array(buf[0..<n])
        }
    }

    /// Writes all bytes; false when the peer is gone. MSG_NOSIGNAL: a dead peer must not raise SIGPIPE.
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    @discardableResult
    func write(_ text: String) -> Bool { write(Array(text.utf8)) }

    /// Sends FIN after everything written so far (the echo's answer to a client half-close).
    func shutdownWrite() { _ = shutdown(fd, Int32(SHUT_WR)) }

    /// Asks for an abortive close (SO_LINGER 0) when the server closes this connection.
    func requestReset() { markAborted() }
}

/// A listener on 127.0.0.1 whose connections each run `handler` on their own detached thread.
final class DemoTCPServer: @unchecked Sendable {
    /// Used in thread names and errors.
    let label: String
    /// Cleared by `stop()`, which breaks the owner → server → handler → owner cycle.
    private var handler: (@Sendable (DemoConnection) -> Void)?
    /// Asked on the accept thread for each connection before it is registered (see `acceptLoop`).
    private let greeting: (@Sendable () -> String)?
    private let lock = PThreadLock()
    private let connectionThreads = DemoWaitGroup()
    private var listenFD: Int32 = -1
    private var acceptThread: pthread_t?
    private var boundPort: UInt16 = 0
    private var connections: [Int32: DemoConnection] = [:]
    private var stopping = false

    init(label: String, greeting: (@Sendable () -> String)? = nil, handler: @escaping @Sendable (DemoConnection) -> Void) {
        self.label = label
        self.greeting = greeting
        self.handler = handler
    }

    /// The bound port (0 before the first `start`).
    var port: UInt16 { lock.withLock { boundPort } }

    var isListening: Bool { lock.withLock { acceptThread != nil } }

    /// Number of connections currently open.
    var openConnections: Int { lock.withLock { connections.count } }

    /// Binds 127.0.0.1:`port` (0 = any free port, or the port of an earlier start) and starts accepting.
    @discardableResult
    func start(port requested: UInt16 = 0) throws -> UInt16 {
        try lock.withLock {
            if acceptThread != nil { return boundPort }
            guard handler != nil else { throw SystemCallError("start after stop()", code: EINVAL) }
            let fd = try Self.bindListener(port: requested != 0 ? requested : boundPort)
            listenFD = fd.fd
            boundPort = fd.port
            stopping = false
            let listenFD = fd.fd
            acceptThread = NamedThread.start(name: label, stackSize: demoStackSize) { [self] in acceptLoop(listenFD) }
            return boundPort
        }
    }

    /// Closes the listener so new connects are refused; established connections keep running.
    func stopListening() {
        let thread: pthread_t? = lock.withLock {
            guard let t = acceptThread else { return nil }
            acceptThread = nil
            // shutdown() wakes the blocked accept() (it returns EINVAL); the accept thread closes the fd.
            _ = shutdown(listenFD, Int32(SHUT_RDWR))
            listenFD = -1
            return t
        }
        if let thread { NamedThread.join(thread) }
    }

    /// Resets every open connection with an RST (the peer sees ECONNRESET).
    func resetConnections() {
        lock.withLock {
            for conn in connections.values {
                conn.requestReset()
                // SHUT_RD wakes the owner's blocked recv without sending anything; it then closes with RST.
                _ = shutdown(conn.fd, Int32(SHUT_RD))
            }
        }
    }

    /// Stops listening, aborts every connection and waits (bounded) for all threads to end.
    /// Final: the server cannot be started again.
    func stop() {
        lock.withLock { stopping = true }
        stopListening()
        lock.withLock {
            for conn in connections.values {
                conn.requestReset()
                _ = shutdown(conn.fd, Int32(SHUT_RDWR))
            }
        }
        connectionThreads.wait(timeoutMs: 2000)
        lock.withLock { handler = nil }
    }

    /// True once `stop()` began: long-running handlers (hang, slow) poll this.
    var isStopping: Bool { lock.withLock { stopping } }

    private func acceptLoop(_ fd: Int32) {
        while true {
            // Glibc's module lacks accept4; the demo never forks, so a missing CLOEXEC is harmless.
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if lock.withLock({ listenFD != fd }) { break }
                // EMFILE and friends: back off instead of spinning.
                usleep(10_000)
                continue
            }
            // The greeting is taken before the registration below, which `stopListening()` cuts
            // off: a connection registered before a stop was greeted with the state before it
            // (an old leader's session says "primary" until the demotion resets it, never
            // "replica", as with a real Postgres, whose role is fixed when a session starts).
            let conn = DemoConnection(fd: client, greeting: greeting?())
            let body: (@Sendable (DemoConnection) -> Void)? = lock.withLock {
                guard listenFD == fd, let handler else { return nil }
                connections[client] = conn
                return handler
            }
            guard let body else {
                close(client)
                break
            }
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            connectionThreads.enter()
            NamedThread.detached(name: label, stackSize: demoStackSize) { [self] in
                body(conn)
                finish(conn)
                connectionThreads.leave()
            }
        }
        close(fd)
    }

    /// Unregisters and closes a connection: with RST when aborted, otherwise a normal close.
    private func finish(_ conn: DemoConnection) {
        lock.withLock {
            connections[conn.fd] = nil
            if conn.isAborted {
                var l = linger(l_onoff: 1, l_linger: 0)
                setsockopt(conn.fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
            }
            close(conn.fd)
        }
    }

    /// A blocking listener on 127.0.0.1:`port` (the accept thread blocks in accept()).
    /// SO_REUSEADDR (set by `Socket.listen`): a restarted listener gets its old port back despite
    /// TIME_WAIT leftovers.
    private static func bindListener(port: UInt16) throws -> (fd: Int32, port: UInt16) {
        let address = SocketAddress(ip: "127.0.0.1", port: port)!
        let fd = try SystemCallError.named("bind \(address)") { () throws(Errno) in
            try Socket.listen(on: address, reusePort: false, backlog: 128)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, Socket.localAddress(of: fd)?.port ?? port)
    }
}
