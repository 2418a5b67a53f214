import CEpoll
import Glibc

/// Socket set-up calls used off the hot path (listen, connect, options). Every fd returned is
/// non-blocking and close-on-exec.
public enum Socket {
    /// A listening TCP socket. `reusePort` lets every worker bind its own socket to the same port.
    /// `deferAccept`: HAProxy's `bind ... defer-accept` (see `setDeferAccept`).
    public static func listen(on address: SocketAddress, reusePort: Bool, backlog: Int32,
                              deferAccept: Bool = false) throws(Errno) -> Int32 {
        let fd = try Errno.check(cepoll_socket(address.family, Int32(SOCK_STREAM.rawValue)))
        do {
            _ = try Errno.check(cepoll_setsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1))
            if reusePort { _ = try Errno.check(cepoll_setsockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) }
            if deferAccept { try setDeferAccept(fd, true) }
            var a = address
            // Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt per listener,
            // not one per connection.
            _ = cepoll_setsockopt_int(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            _ = unsafe try Errno.check(cepoll_bind(fd, &a.storage, a.length))
            _ = try Errno.check(cepoll_listen(fd, backlog))
        } catch {
            _ = cepoll_close(fd)
            throw error
        }
        return fd
    }

    /// TCP_DEFER_ACCEPT on a listening socket: the kernel hands a connection to accept() only once
    /// its first data has arrived (or after one SYN-ACK retransmit, ~1 s), so the proxy is not woken
    /// for a client that has said nothing yet. 1 second, as HAProxy sets it. Also set (or cleared)
    /// on a listener inherited from a reload, so the new configuration decides.
    public static func setDeferAccept(_ fd: Int32, _ on: Bool) throws(Errno) {
        _ = try Errno.check(cepoll_setsockopt_int(fd, Int32(IPPROTO_TCP), TCP_DEFER_ACCEPT, on ? 1 : 0))
    }

    /// The address a socket is bound to (used to learn the port the kernel chose for port 0).
    public static func localAddress(of fd: Int32) -> SocketAddress? {
        var a = SocketAddress()
        a.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        if unsafe cepoll_getsockname(fd, &a.storage, &a.length) < 0 { return nil }
        return a
    }

    /// Starts a non-blocking connect. Returns the fd and whether the connection is already up.
    /// `noDelay`: relayed connections want TCP_NODELAY; a health check's single write does not need it.
    public static func startConnect(to address: SocketAddress, noDelay: Bool = true) throws(Errno) -> (fd: Int32, connected: Bool) {
        let fd = try Errno.check(cepoll_socket(address.family, Int32(SOCK_STREAM.rawValue)))
        if noDelay { _ = cepoll_setsockopt_int(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1) }
        var a = address
        let r = unsafe cepoll_connect(fd, &a.storage, a.length)
        if r == 0 { return (fd, true) }
        if r == -EINPROGRESS { return (fd, false) }
        _ = cepoll_close(fd)
        throw Errno(-r)
    }

    /// The pending error of a socket (0 = connected), read once a non-blocking connect reports.
    public static func pendingError(_ fd: Int32) -> Int32 {
        var v: Int32 = 0
        if unsafe cepoll_getsockopt_int(fd, SOL_SOCKET, SO_ERROR, &v) < 0 { return EBADF }
        return v
    }

    public static func close(_ fd: Int32) { _ = cepoll_close(fd) }
}
