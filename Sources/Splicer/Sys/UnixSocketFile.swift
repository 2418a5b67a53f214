import CEpoll
import Glibc

/// UNIX-domain sockets named by a file path (runtime API, reload hand-over). The one place that
/// builds a `sockaddr_un`.
public enum UnixSocketFile {
    /// A listening socket at `path` (a stale file there is replaced), non-blocking and
    /// close-on-exec, with `mode` applied to the file when given.
    public static func listen(path: String, mode: UInt32? = nil, backlog: Int32,
                              type: Int32 = Int32(SOCK_STREAM.rawValue)) throws(Errno) -> Int32 {
        var addr = try address(path)
        let fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        if fd < 0 { throw Errno(errno) }
        // A socket file left by a crashed process would make bind fail with EADDRINUSE.
        unsafe unlink(path)
        let rc = unsafe withUnsafePointer(to: &addr) {
            unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 || Glibc.listen(fd, backlog) != 0 || (mode.map { unsafe chmod(path, mode_t($0)) != 0 } ?? false) {
            let e = errno
            _ = cepoll_close(fd)
            if rc == 0 { unsafe unlink(path) }
            throw Errno(e)
        }
        return fd
    }

    /// Connects to `path` without blocking longer than `timeoutMs`; the socket returned is
    /// blocking and close-on-exec.
    public static func connect(path: String, type: Int32 = Int32(SOCK_STREAM.rawValue), timeoutMs: Int32) throws(Errno) -> Int32 {
        var addr = try address(path)
        let fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        if fd < 0 { throw Errno(errno) }
        let rc = unsafe withUnsafePointer(to: &addr) {
            unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let e = errno
            // A full backlog answers EAGAIN at once (a listener that never accepts): waiting
            // could only wait for somebody else's good will, so it is a refusal.
            if e != EINPROGRESS {
                _ = cepoll_close(fd)
                throw Errno(e)
            }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if unsafe poll(&p, 1, timeoutMs) != 1 || Socket.pendingError(fd) != 0 {
                _ = cepoll_close(fd)
                throw Errno(ETIMEDOUT)
            }
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    private static func address(_ path: String) throws(Errno) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else { throw Errno(ENAMETOOLONG) }
        unsafe withUnsafeMutableBytes(of: &addr.sun_path) { buf in
            for (i, b) in bytes.enumerated() { unsafe buf[i] = b }
        }
        return addr
    }
}
