import CEpoll
import Glibc
import Splicer

/// The runtime API on a UNIX socket (`stats socket PATH [mode 600]`). An admin path with few
/// clients, so it is kept simple: one accept thread (`gproxy-cli`) and one short-lived thread per
/// connection, blocking I/O with an idle timeout. One command line per connection, then close,
/// unless the client turned on `prompt` mode.
final class RuntimeSocketServer: @unchecked Sendable {
    /// Idle time after which a client is disconnected (HAProxy's `stats timeout` default, 10 s).
    static let defaultIdleTimeoutMs = 10_000
    /// Longest accepted command line; a longer one closes the connection.
    static let maxLineBytes = 64 * 1024
    static let maxClients = 64

    let path: String
    private let mode: UInt32?
    private let cli: RuntimeCLI
    private let idleTimeoutMs: Int
    private let lock = PThreadLock()
    // Guarded by `lock`.
    private var listenFD: Int32 = -1
    private var acceptThread: pthread_t?
    private var clients: Set<Int32> = []

    init(path: String, mode: UInt32? = nil, level: String = "admin", admin: any RuntimeAdmin,
         idleTimeoutMs: Int = RuntimeSocketServer.defaultIdleTimeoutMs) {
        self.path = path
        self.mode = mode
        self.cli = RuntimeCLI(admin: admin, level: level)
        self.idleTimeoutMs = max(1, idleTimeoutMs)
    }

    convenience init(config: StatsSocketConfig, admin: any RuntimeAdmin) {
        self.init(path: config.path, mode: config.mode, level: config.level, admin: admin)
    }

    /// Unlinks a stale socket file, binds, applies the mode and starts accepting.
    func start() throws {
        try lock.withLock {
            guard acceptThread == nil else { return }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            let capacity = MemoryLayout.size(ofValue: addr.sun_path)
            guard !bytes.isEmpty, bytes.count < capacity else {
                throw SystemCallError("stats socket path '\(path)'", code: ENAMETOOLONG)
            }
            withUnsafeMutableBytes(of: &addr.sun_path) { buf in
                for (i, b) in bytes.enumerated() { buf[i] = b }
            }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { throw SystemCallError("socket", code: errno) }
            // A socket file left by a crashed process would make bind fail with EADDRINUSE.
            unlink(path)
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if rc != 0 || listen(fd, 16) != 0 {
                let e = errno
                close(fd)
                throw SystemCallError("bind/listen \(path)", code: e)
            }
            if let mode, chmod(path, mode_t(mode)) != 0 {
                let e = errno
                close(fd)
                unlink(path)
                throw SystemCallError("chmod \(path)", code: e)
            }
            listenFD = fd
            acceptThread = NamedThread.start(name: "gproxy-cli") { [self] in acceptLoop(fd) }
        }
    }

    /// Stops accepting, disconnects clients, joins the accept thread and removes the socket file.
    func stop() {
        let t: pthread_t? = lock.withLock {
            let t = acceptThread
            acceptThread = nil
            if listenFD >= 0 { shutdown(listenFD, Int32(SHUT_RDWR)) }
            for c in clients { shutdown(c, Int32(SHUT_RDWR)) }
            return t
        }
        if let t { NamedThread.join(t) }
        lock.withLock {
            if listenFD >= 0 {
                close(listenFD)
                unlink(path)
                listenFD = -1
            }
        }
    }

    deinit { stop() }

    // MARK: - Threads

    private func acceptLoop(_ fd: Int32) {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if errno == EMFILE || errno == ENFILE { usleep(10_000); continue }
                return  // shut down
            }
            let admitted = lock.withLock { () -> Bool in
                guard acceptThread != nil, clients.count < Self.maxClients else { return false }
                clients.insert(c)
                return true
            }
            guard admitted else { close(c); continue }
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            var tv = timeval(tv_sec: idleTimeoutMs / 1000, tv_usec: (idleTimeoutMs % 1000) * 1000)
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            NamedThread.detached(name: "gproxy-cli-conn") { [self] in serve(c) }
        }
    }

    /// Reads lines and answers them until the session ends, EOF, an error or the idle timeout.
    private func serve(_ fd: Int32) {
        defer {
            lock.withLock { _ = clients.remove(fd) }
            close(fd)
        }
        var session = RuntimeCLI.Session()
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !session.finished {
            if let nl = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeSubrange(...nl)
                guard writeAll(fd, cli.execute(line: line, session: &session)) else { return }
                continue
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 {
                // EOF: a last command without a newline is still run, as HAProxy does.
                if n == 0, !pending.isEmpty {
                    _ = writeAll(fd, cli.execute(line: String(decoding: pending, as: UTF8.self), session: &session))
                }
                return
            }
            pending += chunk[0..<n]
            if pending.count > Self.maxLineBytes { return }
        }
    }

    private func writeAll(_ fd: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let w = bytes.withUnsafeBytes { cepoll_write(fd, $0.baseAddress! + off, UInt(bytes.count - off)) }
            if w == Int(-EINTR) { continue }
            if w <= 0 { return false }
            off += w
        }
        return true
    }
}
