import CEpoll
import Glibc
import Splicer

/// Reload without a reset connection and without forgetting server health.
///
/// HAProxy's `-sf` starts a new process that binds the ports beside the old one (SO_REUSEPORT); when
/// the old one closes its sockets, the connections the kernel had already queued on them are reset,
/// and the new process starts every server UP again until its checks say otherwise. HAProxy users
/// avoid the first with `expose-fd listeners` and `-x`, the second with a `server-state-file` their
/// reload script fills from the stats socket. gproxy does both by itself: every process serves, on
/// a UNIX socket named after its pid, its listening sockets and its servers' state (HAProxy's
/// server-state format); a process started with `-sf`/`-st <pid>` takes them before binding anything.
/// Old and new then share the very same sockets, so the old one closing its copies loses nothing.
///
/// Trust: the socket lives in a directory only this user can write (`HandoverDirectory`), so no
/// other user can take the name first; the server serves only a peer of the same user (or root)
/// and the client checks that the socket it reached belongs to the pid it was given. Every step
/// of the client is bounded in time, and every failure is reported.
enum ReloadHandover {
    /// What the old process gives the new one.
    struct Legacy {
        var listeners: [Int32] = []
        /// `show servers state` text (version 1), empty when none came.
        var serverState = ""
        /// Why nothing (or only part) came; nil when the hand-over was complete.
        var problem: String?
    }

    enum Tag: UInt8 { case end = 0, listener = 1, stateChunk = 2 }
    /// State text travels in chunks that fit any socket buffer (a datagram must fit whole).
    static let chunkBytes = 16384
    /// Bounds of the client side: connecting, each message, and the whole exchange.
    static let connectTimeoutMs: Int32 = 2000
    static let messageTimeoutMs = 2000
    static let totalTimeoutMs: UInt64 = 5000

    static func path(pid: Int32, directory: String) -> String { "\(directory)/handover-\(pid).sock" }

    /// What gproxy process `pid` hands over; empty (with `problem` set) when it does not answer:
    /// not a gproxy (e.g. the haproxy being replaced), an older one, gone, or an impostor. The
    /// caller then binds and checks as usual.
    static func receive(from pid: Int32, directory: HandoverDirectory = .current()) -> Legacy {
        var legacy = Legacy()
        guard let dir = directory.path else {
            legacy.problem = directory.problem
            return legacy
        }
        let endpoint = path(pid: pid, directory: dir)
        let conn: Int32
        do {
            conn = try UnixSocketFile.connect(path: endpoint, type: Int32(SOCK_SEQPACKET.rawValue), timeoutMs: connectTimeoutMs)
        } catch {
            legacy.problem = error.code == ENOENT
                ? "process \(pid) offers no hand-over (not a gproxy, or an older one)"
                : "hand-over from process \(pid) failed: connect \(endpoint): \(error)"
            return legacy
        }
        defer { _ = cepoll_close(conn) }
        var peerPid: Int32 = 0, peerUid: Int32 = 0
        guard cepoll_peer_credentials(conn, &peerPid, &peerUid) == 0, peerPid == pid else {
            legacy.problem = "hand-over refused: \(endpoint) is served by process \(peerPid), not \(pid)"
            return legacy
        }
        var timeout = timeval(tv_sec: messageTimeoutMs / 1000, tv_usec: (messageTimeoutMs % 1000) * 1000)
        _ = setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let deadline = Clock.nowMs() + totalTimeoutMs
        var buffer = [UInt8](repeating: 0, count: chunkBytes + 1)
        var state: [UInt8] = []
        var complete = false
        while Clock.nowMs() < deadline {
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
        if complete {
            legacy.serverState = String(decoding: state, as: UTF8.self)
        } else {
            legacy.problem = "hand-over from process \(pid) cut short (\(legacy.listeners.count) socket(s) received): "
                + "server state not carried over"
        }
        return legacy
    }
}

/// Where hand-over sockets live: a directory owned by this user and writable by nobody else, so
/// the name a process will serve cannot be taken by another user first. `GPROXY_RUNTIME_DIR`
/// overrides the choice; otherwise `/run/gproxy` for root, `$XDG_RUNTIME_DIR/gproxy`, or
/// `/tmp/gproxy-<uid>`, the first that can be made private.
struct HandoverDirectory {
    var path: String?
    var problem: String?

    static func current(environment: [String: String] = Environment.all()) -> HandoverDirectory {
        var candidates: [String] = []
        if let d = environment["GPROXY_RUNTIME_DIR"], !d.isEmpty {
            candidates = [d]
        } else {
            if geteuid() == 0 { candidates.append("/run/gproxy") }
            if let x = environment["XDG_RUNTIME_DIR"], !x.isEmpty { candidates.append(x + "/gproxy") }
            candidates.append("/tmp/gproxy-\(geteuid())")
        }
        var problems: [String] = []
        for dir in candidates {
            if let p = privacyProblem(dir) { problems.append(p) } else { return HandoverDirectory(path: dir) }
        }
        return HandoverDirectory(path: nil, problem: "reload hand-over disabled: " + problems.joined(separator: "; "))
    }

    /// Creates `dir` (mode 0700) if missing; nil when it is a real directory of ours that no
    /// other user can write to, else what is wrong.
    static func privacyProblem(_ dir: String) -> String? {
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { return "cannot create \(dir): \(Errno(errno))" }
        var st = stat()
        guard lstat(dir, &st) == 0 else { return "cannot stat \(dir): \(Errno(errno))" }
        if st.st_mode & S_IFMT != S_IFDIR { return "\(dir) is not a directory" }
        if st.st_uid != geteuid() { return "\(dir) belongs to uid \(st.st_uid), not \(geteuid())" }
        if st.st_mode & 0o022 != 0 { return "\(dir) is writable by others (mode \(String(st.st_mode & 0o777, radix: 8)))" }
        return nil
    }
}

/// The serving side, on the control loop: one connection at a time, answered at once.
final class HandoverEndpoint: EventHandler, @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let control: ControlLoop
    private var token: LoopToken?
    private let provider: () -> (listeners: [Int32], serverState: String)

    /// Listens at this process's path; throws what went wrong (the caller logs it: a reload will
    /// then fall back to binding anew and checking from scratch).
    init(directory: String, control: ControlLoop, provider: @escaping () -> (listeners: [Int32], serverState: String)) throws {
        let path = ReloadHandover.path(pid: getpid(), directory: directory)
        self.path = path
        fd = try SystemCallError.named("hand-over socket \(path)") { () throws(Errno) in
            try UnixSocketFile.listen(path: path, mode: 0o600, backlog: 4, type: Int32(SOCK_SEQPACKET.rawValue))
        }
        self.control = control
        self.provider = provider
        super.init()
        try control.sync { [self] in
            do throws(Errno) {
                token = try control.loop.register(fd, events: CEPOLL_EPOLLIN, self)
            } catch {
                throw SystemCallError("epoll_ctl \(path)", error)
            }
        }
    }

    /// Stops serving (soft stop: a stopping process hands nothing over) and removes the file.
    func close() {
        control.sync { [self] in
            guard let token else { return }
            control.loop.deregister(fd, token)
            self.token = nil
            _ = cepoll_close(fd)
            unlink(path)
        }
    }

    override func handle(events: UInt32, tag _: UInt32) {
        while true {
            let conn = cepoll_handover_accept(fd)
            guard conn >= 0 else { return }
            handOver(to: conn)
            _ = cepoll_close(conn)
        }
    }

    private func handOver(to conn: Int32) {
        var pid: Int32 = 0, uid: Int32 = 0
        guard cepoll_peer_credentials(conn, &pid, &uid) == 0, uid == 0 || uid_t(uid) == geteuid() else { return }
        // Blocking with a bound: a peer that stops reading costs this loop at most 2 s a message.
        _ = fcntl(conn, F_SETFL, fcntl(conn, F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let (listeners, state) = provider()
        var ok = true
        for copy in listeners {
            if ok { ok = Self.send(conn, [ReloadHandover.Tag.listener.rawValue], fd: copy) }
            _ = cepoll_close(copy)
        }
        // The receiver concatenates the chunks, so they may split anywhere.
        let text = Array(state.utf8)
        for start in stride(from: 0, to: text.count, by: ReloadHandover.chunkBytes) where ok {
            let end = min(start + ReloadHandover.chunkBytes, text.count)
            ok = Self.send(conn, [ReloadHandover.Tag.stateChunk.rawValue] + text[start..<end], fd: -1)
        }
        if ok { _ = Self.send(conn, [ReloadHandover.Tag.end.rawValue], fd: -1) }
    }

    private static func send(_ conn: Int32, _ bytes: [UInt8], fd: Int32) -> Bool {
        bytes.withUnsafeBytes { cepoll_send_msg(conn, $0.baseAddress, UInt($0.count), fd) } > 0
    }
}

/// The process environment without Foundation.
enum Environment {
    static func all() -> [String: String] {
        var out: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return out
    }
}
