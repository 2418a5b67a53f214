import CEpoll
import Glibc
import Splicer
import Synchronization

/// Reload without a reset connection. HAProxy's `-sf` starts a new process that binds the ports
/// beside the old one (SO_REUSEPORT); when the old one closes its sockets, the connections the
/// kernel had already queued on them are reset — HAProxy users avoid that only with
/// `expose-fd listeners` and `-x`. gproxy does the hand-over by itself: every process serves its
/// listening sockets on an abstract unix socket named after its pid, and a process started with
/// `-sf`/`-st <pid>` takes them from there before binding anything. Old and new then share the
/// very same sockets, so the old one closing its copies loses nothing.
///
/// Only a peer of the same user (or root) is served; the client checks that the socket it reached
/// belongs to the pid it was given.
final class ListenerHandover: @unchecked Sendable {
    static func name(pid: Int32) -> String { "gproxy-listeners-\(pid)" }

    private let fd: Int32
    private let provider: @Sendable () -> [Int32]
    private let stopping = Atomic<Bool>(false)
    private var thread: pthread_t?

    /// Listens on this process's name; nil when that fails (the reload then falls back to
    /// SO_REUSEPORT binding).
    init?(provider: @escaping @Sendable () -> [Int32]) {
        let r = cepoll_handover_listen(Self.name(pid: getpid()))
        guard r >= 0 else { return nil }
        fd = r
        self.provider = provider
    }

    func start() {
        thread = NamedThread.start(name: "gproxy-handover") { [self] in serve() }
    }

    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        if let t = thread { NamedThread.join(t) }
        thread = nil
    }

    deinit { _ = cepoll_close(fd) }

    private func serve() {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while !stopping.load(ordering: .sequentiallyConsistent) {
            guard poll(&p, 1, 200) > 0 else { continue }
            let conn = cepoll_handover_accept(fd)
            guard conn >= 0 else { continue }
            handOver(to: conn)
            _ = cepoll_close(conn)
        }
    }

    private func handOver(to conn: Int32) {
        var pid: Int32 = 0, uid: Int32 = 0
        guard cepoll_peer_credentials(conn, &pid, &uid) == 0, uid == 0 || uid_t(uid) == geteuid() else { return }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        for copy in provider() {
            _ = cepoll_send_fd(conn, Self.socketTag, copy)
            _ = cepoll_close(copy)
        }
        _ = cepoll_send_fd(conn, Self.endTag, -1)
    }

    private static let endTag: UInt8 = 0
    private static let socketTag: UInt8 = 1

    /// The listening sockets of gproxy process `pid`; empty when it does not answer (not a gproxy,
    /// an older one, or gone), in which case the caller binds as usual.
    static func receive(from pid: Int32) -> [Int32] {
        let conn = cepoll_handover_connect(name(pid: pid))
        guard conn >= 0 else { return [] }
        defer { _ = cepoll_close(conn) }
        var peerPid: Int32 = 0, peerUid: Int32 = 0
        guard cepoll_peer_credentials(conn, &peerPid, &peerUid) == 0, peerPid == pid else { return [] }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var fds: [Int32] = []
        while true {
            var got: Int32 = -1
            let tag = cepoll_recv_fd(conn, &got)
            if tag == Int32(socketTag), got >= 0 {
                fds.append(got)
                continue
            }
            if got >= 0 { _ = cepoll_close(got) }
            break
        }
        return fds
    }
}
