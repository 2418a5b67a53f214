/// One client connection and, once connected, its server connection.
///
/// Phases:
///
///     accepted ──pick──▶ connecting ──connected──▶ established ──both FINs relayed──▶ closed
///        │                  │   ▲                      │
///        │ servers full     │   │ retry (same server,  │ error / timeout / shutdown-sessions
///        ▼                  ▼   │ after a pause)       ▼
///      queued ──granted──▶ (connecting)  retryWait     closed
///
/// Sessions are pooled per worker and addressed by slot; `generation` changes on every reuse so
/// a queue grant for an earlier occupant is recognised and dropped (stale epoll events are dropped
/// by the EventLoop's own registration generations).
@safe final class Session: EventHandler {
    enum Phase: UInt8 { case free, queued, connecting, retryWait, established }

    /// SAFETY: the worker makes its sessions and runs the only loop that calls them (inside
    /// `Worker.run()`), so the worker is alive whenever a session handles an event. Not `unowned`:
    /// that would be a reference-count check and increment per event.
    unowned(unsafe) let worker: Worker
    /// This session's index in its worker's pool.
    let slot: Int32
    /// The sockets' current registrations with the worker's loop (`.none` when closed).
    var clientToken = LoopToken.none
    var serverToken = LoopToken.none

    init(worker: Worker, slot: Int32) {
        unsafe self.worker = worker
        self.slot = slot
    }

    /// The handler of both sockets, told apart by the registration's tag: no handler object per
    /// socket, so an idle connection costs only its `Session`.
    static let clientTag: UInt32 = 0
    static let serverTag: UInt32 = 1

    override func handle(events: UInt32, tag: UInt32) {
        // The loop already dropped events of an earlier registration (generation check).
        guard phase != .free else { return }
        if tag == Session.clientTag {
            unsafe worker.clientEvent(slot, self, events)
        } else {
            unsafe worker.serverEvent(slot, self, events)
        }
    }

    var generation: UInt32 = 0
    var phase: Phase = .free
    var frontend = 0
    var backend = 0
    /// -1 until a server is chosen; while >= 0 the session holds one of that server's slots.
    var server = -1
    var clientFd: Int32 = -1
    var serverFd: Int32 = -1
    var clientAddress = SocketAddress()
    /// Client → server and server → client.
    var up = RelayHalf()
    var down = RelayHalf()
    var retriesLeft = 0
    var retries = 0
    var redispatched = false
    var ticket: QueueTicket?
    /// The server's shutdown epoch when this session connected (see `ServerRuntimeState`).
    var shutdownEpoch: UInt32 = 0
    /// Timing for the session log (ms; -1 = not reached).
    var acceptMs: UInt64 = 0
    var acceptWallMs: Int64 = 0
    var queueMs = -1
    var connectStartMs: UInt64 = 0
    var connectMs = -1
    /// The session sits in the worker's ready list (it spent its relay budget and must be pumped
    /// again without waiting for an event).
    var inReadyList = false

    func reset(frontend: Int, backend: Int, clientFd: Int32, address: SocketAddress, now: UInt64, wallMs: Int64) {
        phase = .connecting
        self.frontend = frontend
        self.backend = backend
        server = -1
        self.clientFd = clientFd
        serverFd = -1
        clientAddress = address
        up = RelayHalf()
        down = RelayHalf()
        retries = 0
        redispatched = false
        ticket = nil
        acceptMs = now
        acceptWallMs = wallMs
        queueMs = -1
        connectMs = -1
        inReadyList = false
    }
}

/// One direction of a relay: source socket → pipe → destination socket.
struct RelayHalf {
    var pipe = Pipe.none
    /// Bytes spliced into the pipe and not yet out of it.
    var inPipe = 0
    /// Edge-triggered readiness caches: set by an epoll report, cleared by EAGAIN.
    var srcReady = false
    var dstReady = false
    /// The source reported RDHUP/HUP/ERR: a read may return EOF or an error next.
    var srcHup = false
    /// The source sent FIN.
    var srcEOF = false
    /// We relayed that FIN (shutdown(SHUT_WR) on the destination).
    var dstShut = false
    /// A read filled the copy buffer: this is a bulk flow, splice from now on.
    var bulk = false
    var bytes: UInt64 = 0
}

/// What the session log (`option tcplog`) needs about a finished session.
public struct SessionRecord: Sendable {
    public var frontend: Int
    public var backend: Int
    /// -1 = `<NOSRV>`.
    public var server: Int
    public var client: SocketAddress
    /// Wall-clock accept time, ms since the epoch.
    public var acceptWallMs: Int64
    /// Tw / Tc / Tt in ms (-1 = never reached).
    public var queueMs: Int
    public var connectMs: Int
    public var totalMs: Int
    /// Bytes server → client (HAProxy's %B).
    public var bytesToClient: UInt64
    public var bytesToServer: UInt64
    /// Termination state, two characters ("--", "SC", "sQ", "D-", ...).
    public var termination: String
    public var processSessions: Int
    public var frontendSessions: Int
    public var backendSessions: Int
    public var serverSessions: Int
    public var retries: Int
    public var redispatched: Bool
    public var serverQueue: Int
    public var backendQueue: Int
}
