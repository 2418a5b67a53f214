import CEpoll
import Glibc
import Splicer
import Synchronization

/// Reload without a reset connection and without forgetting server health.
///
/// HAProxy's `-sf` starts a new process that binds the ports beside the old one (SO_REUSEPORT); when
/// the old one closes its sockets, the connections the kernel had already queued on them are reset,
/// and the new process starts every server UP again until its checks say otherwise. HAProxy users
/// avoid the first with `expose-fd listeners` and `-x`, the second with a `server-state-file` their
/// reload script fills from the stats socket. gproxy does both by itself: every process serves, on an
/// abstract unix socket named after its pid, its listening sockets and its servers' state (HAProxy's
/// server-state format); a process started with `-sf`/`-st <pid>` takes them before binding anything.
/// Old and new then share the very same sockets, so the old one closing its copies loses nothing.
///
/// Only a peer of the same user (or root) is served; the client checks that the socket it reached
/// belongs to the pid it was given.
final class ReloadHandover: @unchecked Sendable {
    /// What the old process gives the new one.
    struct Legacy {
        var listeners: [Int32] = []
        /// `show servers state` text (version 1), empty when none came.
        var serverState = ""
    }

    static func name(pid: Int32) -> String { "gproxy-listeners-\(pid)" }

    private let fd: Int32
    private let provider: @Sendable () -> (listeners: [Int32], serverState: String)
    private let stopping = Atomic<Bool>(false)
    private var thread: pthread_t?

    /// Listens on this process's name; nil when that fails (a reload then falls back to binding
    /// with SO_REUSEPORT and checking from scratch).
    init?(provider: @escaping @Sendable () -> (listeners: [Int32], serverState: String)) {
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

    private enum Tag: UInt8 { case end = 0, listener = 1, stateChunk = 2 }
    /// State text travels in chunks that fit any socket buffer (a datagram must fit whole).
    private static let chunkBytes = 16384

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
        let (listeners, state) = provider()
        for copy in listeners {
            Self.send(conn, [Tag.listener.rawValue], fd: copy)
            _ = cepoll_close(copy)
        }
        // The receiver concatenates the chunks, so they may split anywhere.
        let text = Array(state.utf8)
        for start in stride(from: 0, to: text.count, by: Self.chunkBytes) {
            Self.send(conn, [Tag.stateChunk.rawValue] + text[start..<min(start + Self.chunkBytes, text.count)], fd: -1)
        }
        Self.send(conn, [Tag.end.rawValue], fd: -1)
    }

    private static func send(_ conn: Int32, _ bytes: [UInt8], fd: Int32) {
        _ = bytes.withUnsafeBytes { cepoll_send_msg(conn, $0.baseAddress, UInt($0.count), fd) }
    }

    /// What gproxy process `pid` hands over; empty when it does not answer (not a gproxy, an older
    /// one, or gone), in which case the caller binds and checks as usual.
    static func receive(from pid: Int32) -> Legacy {
        var legacy = Legacy()
        let conn = cepoll_handover_connect(name(pid: pid))
        guard conn >= 0 else { return legacy }
        defer { _ = cepoll_close(conn) }
        var peerPid: Int32 = 0, peerUid: Int32 = 0
        guard cepoll_peer_credentials(conn, &peerPid, &peerUid) == 0, peerPid == pid else { return legacy }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: chunkBytes + 1)
        var state: [UInt8] = []
        var complete = false
        while true {
            var got: Int32 = -1
            let n = buffer.withUnsafeMutableBytes { cepoll_recv_msg(conn, $0.baseAddress, UInt($0.count), &got) }
            guard n > 0, let tag = Tag(rawValue: buffer[0]) else {
                if got >= 0 { _ = cepoll_close(got) }
                break
            }
            switch tag {
            case .listener:
                if got >= 0 { legacy.listeners.append(got) }
                continue
            case .stateChunk:
                if got >= 0 { _ = cepoll_close(got) }
                state += buffer[1..<n]
                continue
            case .end:
                complete = true
            }
            break
        }
        // A cut-short state is not used: better to check from scratch than to trust half of it.
        if complete { legacy.serverState = String(decoding: state, as: UTF8.self) }
        return legacy
    }
}
