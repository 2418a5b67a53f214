import CEpoll
import Glibc

/// One worker thread: an epoll loop that owns its listening sockets (SO_REUSEPORT), its sessions,
/// its pipes and its timers. Nothing here is shared with other workers except through
/// `BackendShared` (slot counts, queues), the route publisher, and the inbox.
///
/// Each loop iteration: reload the routing table if a new one was published (one atomic load) →
/// epoll_wait until the nearest timer → handle events → continue over-budget relays → expire timers.
@safe final class Worker {
    enum TokenKind: UInt64 { case listener = 1, client = 2, server = 3, wake = 4 }

    let id: Int
    unowned let engine: Engine
    let ep: Int32
    var routes: RouteCache
    var lastShutdownSum: UInt64
    let counters: CounterBlock
    let layout: CounterLayout
    var pipes: PipePool
    var timers = TimerLists()
    var sessions: [Session] = []
    var freeSlots: [Int32] = []
    var liveSessions = 0
    /// Sessions that hit their per-wakeup relay budget and must be pumped again without an event.
    var readyList: [Int32] = []
    var readyScratch: [Int32] = []
    var messages: [WorkerMessage] = []
    /// This worker's listening sockets: (fd, frontend, address).
    var listeners: [(fd: Int32, frontend: Int, address: SocketAddress)] = []
    var listenersPaused = false
    var acceptBackoffUntil: UInt64 = 0
    var softStopping = false
    var stopping = false
    var now: UInt64

    /// Timer lists per frontend: connect, queue, retry pause, idle, half-closed.
    struct PhaseTimers { var connect: Int32; var queue: Int32; var retry: Int32; var idle: Int32; var fin: Int32
        var idleSide: UInt8 }
    var phaseTimers: [PhaseTimers] = []

    let eventMask = CEPOLL_EPOLLIN | CEPOLL_EPOLLOUT | CEPOLL_EPOLLRDHUP | CEPOLL_EPOLLET
    static let relayBudget = 1 << 20
    /// Small messages are copied through this buffer (see `pump`); one per worker, used synchronously.
    static let copyBytes = 16384
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: Worker.copyBytes, alignment: 16)
    private let events = UnsafeMutablePointer<UInt32>.allocate(capacity: 256)
    private let tokens = UnsafeMutablePointer<UInt64>.allocate(capacity: 256)

    init(id: Int, engine: Engine, listenFds: [(Int32, Int, SocketAddress)]) throws(Errno) {
        self.id = id
        self.engine = engine
        ep = try Errno.check(cepoll_create())
        routes = RouteCache(engine.publisher)
        lastShutdownSum = routes.table.shutdownSum
        counters = engine.counterBlocks[id]
        layout = engine.layout
        pipes = PipePool(capacity: engine.spec.pipePoolSize, pipeSize: engine.spec.pipeSize, gauge: engine.spec.pipes)
        now = Clock.nowMs()
        for (fd, fe, addr) in listenFds { listeners.append((fd, fe, addr)) }
        for fe in engine.spec.frontends {
            let be = engine.spec.backends[fe.backend]
            let idle: Int? = be.tunnelTimeout ?? Worker.minOf(fe.clientTimeout, be.serverTimeout)
            let side: UInt8 = be.tunnelTimeout != nil || (fe.clientTimeout ?? Int.max) <= (be.serverTimeout ?? Int.max)
                ? UInt8(ascii: "c") : UInt8(ascii: "s")
            let fin = Worker.minOf(fe.clientFinTimeout, be.serverFinTimeout) ?? idle
            let retryPause = min(be.connectTimeout ?? 1000, 1000)
            phaseTimers.append(PhaseTimers(
                connect: timers.list(for: be.connectTimeout), queue: timers.list(for: be.effectiveQueueTimeout),
                retry: timers.list(for: retryPause), idle: timers.list(for: idle), fin: timers.list(for: fin),
                idleSide: side))
        }
        _ = try Errno.check(cepoll_ctl(ep, CEPOLL_CTL_ADD, engine.inboxes[id].wake.fd, CEPOLL_EPOLLIN,
                                       Worker.token(.wake, 0, 0)))
        for (i, l) in listeners.enumerated() {
            _ = try Errno.check(cepoll_ctl(ep, CEPOLL_CTL_ADD, l.fd, CEPOLL_EPOLLIN | CEPOLL_EPOLLET,
                                           Worker.token(.listener, Int32(i), 0)))
        }
    }

    deinit {
        unsafe scratch.deallocate()
        unsafe events.deallocate()
        unsafe tokens.deallocate()
    }

    static func minOf(_ a: Int?, _ b: Int?) -> Int? {
        switch (a, b) {
        case let (x?, y?): return min(x, y)
        case let (x?, nil): return x
        case let (nil, y?): return y
        default: return nil
        }
    }

    @inline(__always)
    static func token(_ kind: TokenKind, _ slot: Int32, _ generation: UInt32) -> UInt64 {
        kind.rawValue << 60 | UInt64(generation & 0x0FFF_FFFF) << 32 | UInt64(UInt32(bitPattern: slot))
    }

    // MARK: - Loop

    func run() {
        while true {
            refreshRoutes()
            var timeout = readyList.isEmpty ? timers.timeout(now: now) : 0
            if acceptBackoffUntil > 0 {
                let wait = acceptBackoffUntil > now ? Int32(acceptBackoffUntil - now) : 0
                timeout = timeout < 0 ? wait : min(timeout, wait)
            }
            // SAFETY: both buffers hold 256 entries and cepoll_wait writes at most `max` (256) of each.
            let n = unsafe cepoll_wait(ep, events, tokens, 256, timeout)
            now = Clock.nowMs()
            if n > 0 {
                for i in 0..<Int(n) { unsafe handle(events[i], tokens[i]) }
            }
            if !readyList.isEmpty { pumpReadyList() }
            while let slot = timers.popExpired(now: now) { timerFired(slot) }
            if acceptBackoffUntil > 0 && now >= acceptBackoffUntil {
                acceptBackoffUntil = 0
                acceptOnAllListeners()
            }
            if stopping || (softStopping && liveSessions == 0) { break }
        }
        shutdownEverything()
    }

    /// Loads a newly published routing table, and cuts sessions if shutdown epochs moved.
    @inline(__always)
    func refreshRoutes() {
        if routes.refresh(), routes.table.shutdownSum != lastShutdownSum {
            lastShutdownSum = routes.table.shutdownSum
            cutSessionsOfShutdownServers()
        }
    }

    private func handle(_ ev: UInt32, _ token: UInt64) {
        let slot = Int32(bitPattern: UInt32(truncatingIfNeeded: token))
        let generation = UInt32(truncatingIfNeeded: token >> 32) & 0x0FFF_FFFF
        switch TokenKind(rawValue: token >> 60) {
        case .listener:
            accept(listener: Int(slot))
        case .wake:
            handleInbox()
        case .client:
            let s = sessions[Int(slot)]
            guard s.generation & 0x0FFF_FFFF == generation, s.phase != .free else { return }
            clientEvent(slot, s, ev)
        case .server:
            let s = sessions[Int(slot)]
            guard s.generation & 0x0FFF_FFFF == generation, s.phase != .free else { return }
            serverEvent(slot, s, ev)
        case nil:
            return
        }
    }

    private func handleInbox() {
        engine.inboxes[id].drain(into: &messages)
        for m in messages {
            switch m {
            case .grant(let t): granted(t)
            case .pauseListeners: closeListeners(); listenersPaused = true
            case .resumeListeners: reopenListeners()
            case .softStop: softStopping = true; closeListeners()
            case .stop: stopping = true
            case .retryAccept: acceptOnAllListeners()
            case .tableChanged: break  // the refresh at the top of the loop does the work
            }
        }
        messages.removeAll(keepingCapacity: true)
    }

    // MARK: - Slots

    func allocateSlot() -> Int32 {
        if let s = freeSlots.popLast() { return s }
        sessions.append(Session())
        timers.ensureCapacity(sessions.count)
        return Int32(sessions.count - 1)
    }

    func freeSlot(_ slot: Int32) {
        let s = sessions[Int(slot)]
        s.phase = .free
        s.generation &+= 1
        s.ticket = nil
        freeSlots.append(slot)
        liveSessions -= 1
    }

    // MARK: - Listeners

    private func acceptOnAllListeners() {
        for i in listeners.indices where listeners[i].fd >= 0 { accept(listener: i) }
    }

    private func accept(listener i: Int) {
        let l = listeners[i]
        guard l.fd >= 0, !listenersPaused, !softStopping else { return }
        let fe = l.frontend
        while true {
            // Limits are reserved before accepting, so an over-limit connection stays in the
            // kernel backlog (HAProxy's behaviour) instead of being accepted and dropped.
            // The peaks (smax) count only what accept really returned.
            engine.acceptProbe?(.reserving(worker: id))
            guard let inProcess = engine.processSessions.tryReserve() else {
                waitForRoom(engine.processSessions, engine.processWaiters)
                return
            }
            guard let inFrontend = engine.frontendSessions[fe].tryReserve() else {
                giveBack(engine.processSessions, to: engine.processWaiters)
                waitForRoom(engine.frontendSessions[fe], engine.frontendWaiters[fe])
                return
            }
            engine.acceptProbe?(.reserved(worker: id))
            var addr = SocketAddress()
            addr.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = unsafe cepoll_accept4(l.fd, &addr.storage, &addr.length)
            if fd < 0 {
                giveBack(engine.frontendSessions[fe], to: engine.frontendWaiters[fe])
                giveBack(engine.processSessions, to: engine.processWaiters)
                switch -fd {
                case EAGAIN: return
                case EINTR, ECONNABORTED: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of fds or memory: back off briefly instead of spinning on the ready listener.
                    acceptBackoffUntil = now + 100
                    return
                default: return
                }
            }
            engine.processSessions.confirm(inProcess)
            engine.frontendSessions[fe].confirm(inFrontend)
            startSession(clientFd: fd, address: addr, frontend: fe)
        }
    }

    /// `limit` is full: ask to be woken when a unit of it frees, then re-check that limit once so a
    /// release that raced with us is not missed (another frontend being full is no reason to sleep).
    private func waitForRoom(_ limit: LiveCount, _ waiters: WaitingWorkers) {
        engine.acceptProbe?(.full(worker: id))
        waiters.add(id)
        if limit.hasRoom {
            acceptBackoffUntil = now + 1
        }
        engine.acceptProbe?(.waitingForRoom(worker: id))
    }

    /// Returns a unit reserved for an accept that found no connection. Another worker may have
    /// found the limit full because of this very reservation and gone to sleep with a connection in
    /// its own listener's backlog (SO_REUSEPORT): wake it, as ending a session does. Only workers
    /// that failed on this limit are woken, so two workers at a full frontend never wake each other.
    private func giveBack(_ count: LiveCount, to waiters: WaitingWorkers) {
        count.release()
        engine.wake(waiters)
    }

    /// Closes this worker's listening sockets (their addresses stay known for a resume). The epoll
    /// registration is removed first: after a reload hand-over the new process holds the same
    /// sockets, and epoll would keep reporting them here after a bare close.
    private func closeListeners() {
        engine.listenerTable.withLock { table in
            for i in listeners.indices where listeners[i].fd >= 0 {
                _ = cepoll_ctl(ep, CEPOLL_CTL_DEL, listeners[i].fd, 0, 0)
                Socket.close(listeners[i].fd)
                listeners[i].fd = -1
                table[id][i] = -1
            }
        }
    }

    private func reopenListeners() {
        listenersPaused = false
        guard !softStopping else { return }
        for i in listeners.indices where listeners[i].fd < 0 {
            let backlog = engine.listenBacklog(frontend: listeners[i].frontend)
            guard let fd = try? Socket.listen(on: listeners[i].address, reusePort: true, backlog: backlog) else { continue }
            listeners[i].fd = fd
            engine.listenerTable.withLock { $0[id][i] = fd }
            _ = cepoll_ctl(ep, CEPOLL_CTL_ADD, fd, CEPOLL_EPOLLIN | CEPOLL_EPOLLET, Worker.token(.listener, Int32(i), 0))
        }
        acceptOnAllListeners()
    }

    private func shutdownEverything() {
        for i in sessions.indices where sessions[i].phase != .free {
            closeSession(Int32(i), sessions[i], "K-")
        }
        closeListeners()
        pipes.closeAll()
        _ = cepoll_close(ep)
    }
}
