import CEpoll
import Glibc

/// The small amount of OS plumbing the stats listener and the runtime socket need: a lock, a named
/// thread, a listening TCP socket and an errno-carrying error. Kept apart from the relay workers'
/// code on purpose: nothing here is shared with them, so the admin paths can never stall traffic.

/// A failed system call: the call's name and the errno it returned.
struct StatsSysError: Error, CustomStringConvertible, Equatable {
    var operation: String
    var errno: Int32

    var description: String { "\(operation): \(String(cString: strerror(errno))) (errno \(errno))" }

    /// Throws when a `cepoll_*` result is a negated errno.
    @discardableResult
    static func check(_ result: Int32, _ operation: String) throws(StatsSysError) -> Int32 {
        if result < 0 { throw StatsSysError(operation: operation, errno: -result) }
        return result
    }
}

/// A pthread mutex in a class (NIOLock style; the stdlib `Mutex` trips TSan on 6.3.1, see
/// swift-idioms.md item 7).
final class StatsLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A joinable (or detached) pthread running a Swift closure under a kernel-visible name.
final class StatsThread: @unchecked Sendable {
    private final class Box: @unchecked Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    private var tid = pthread_t()
    private var joined = false

    /// Starts `body` on a new thread named `name` (15 bytes at most are kept by the kernel).
    static func start(name: String, detached: Bool = false, _ body: @escaping @Sendable () -> Void) throws(StatsSysError) -> StatsThread {
        let t = StatsThread()
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        let rc = pthread_create(&t.tid, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            _ = cepoll_set_thread_name(box.name)
            box.body()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            throw StatsSysError(operation: "pthread_create", errno: rc)
        }
        if detached {
            pthread_detach(t.tid)
            t.joined = true
        }
        return t
    }

    /// Waits for the thread to end; safe to call once from any other thread.
    func join() {
        guard !joined else { return }
        joined = true
        pthread_join(tid, nil)
    }
}

enum StatsSocket {
    /// Creates a non-blocking listening TCP socket. `host` "", "*" or "0.0.0.0" binds every IPv4
    /// address, "::" every IPv6 one; port 0 picks a free port.
    static func listenTCP(host: String, port: UInt16, backlog: Int32 = 1024) throws(StatsSysError) -> Int32 {
        let ip = (host.isEmpty || host == "*") ? "0.0.0.0" : host
        var addr = sockaddr_storage()
        let len = cepoll_make_addr(ip, Int32(port), &addr)
        if len < 0 { throw StatsSysError(operation: "address \(ip)", errno: -len) }
        let fd = try StatsSysError.check(cepoll_socket(Int32(addr.ss_family), Int32(SOCK_STREAM.rawValue)), "socket")
        do {
            try StatsSysError.check(cepoll_setsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1), "setsockopt")
            try StatsSysError.check(cepoll_bind(fd, &addr, socklen_t(len)), "bind \(ip):\(port)")
            try StatsSysError.check(cepoll_listen(fd, backlog), "listen")
        } catch {
            _ = cepoll_close(fd)
            throw error
        }
        return fd
    }

    /// The local port a socket is bound to, 0 if unknown.
    static func localPort(_ fd: Int32) -> UInt16 {
        var addr = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        guard cepoll_getsockname(fd, &addr, &len) == 0 else { return 0 }
        var ip = [CChar](repeating: 0, count: 64)
        var port: Int32 = 0
        guard cepoll_format_addr(&addr, &ip, 64, &port) == 0 else { return 0 }
        return UInt16(truncatingIfNeeded: port)
    }
}
