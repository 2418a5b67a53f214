import CEpoll
import Glibc

/// One worker thread: an `EventLoop` that owns its listening sockets (SO_REUSEPORT), its sessions,
/// its pipes and its timers. Nothing here is shared with other workers except through
/// `BackendShared` (slot counts, queues), the route publisher, and the mailbox.
///
/// Each loop turn: reload the routing table if a new one was published (one atomic load,
/// `turnStarting`) → wait until the nearest timer → handle events (a socket's handler is its
/// `Session`, both sockets told apart by the registration's tag, or a `ListenerSocket`) → continue
/// over-budget relays → expire timers (`turnEnded`).
@safe final class Worker {
    let id: Int
    unowned let engine: Engine
    let loop: EventLoop
    let mailbox: LoopMailbox<WorkerMessage>
    var routes: RouteCache
    var lastShutdownSum: UInt64
    let counters: CounterBlock
    let layout: CounterLayout
    var pipes: PipePool
    var timers = TimerLists()
    /// Pooled by slot; each is also the loop handler of its client and server sockets.
    var sessions: [Session] = []
    var freeSlots: [Int32] = []
    var liveSessions = 0
    /// Sessions that hit their per-wakeup relay budget and must be pumped again without an event.
    var readyList: [Int32] = []
    var readyScratch: [Int32] = []
    var messages: [WorkerMessage] = []
    /// This worker's listening sockets: (fd, frontend, address, registration).
    var listeners: [(fd: Int32, frontend: Int, address: SocketAddress, deferAccept: Bool, token: LoopToken)] = []
    var listenerSockets: [ListenerSocket] = []
    var listenersPaused = false
    var acceptBackoffUntil: UInt64 = 0
    var softStopping = false
    var stopping = false
    /// This turn's time, read once after the wait.
    var now: UInt64 { @inline(__always) get { loop.now } }

    /// Timer lists per frontend: connect, queue, retry pause, idle, half-closed.
    struct PhaseTimers { var connect: Int32; var queue: Int32; var retry: Int32; var idle: Int32; var fin: Int32
        var idleSide: UInt8 }
    var phaseTimers: [PhaseTimers] = []

    let eventMask = CEPOLL_EPOLLIN | CEPOLL_EPOLLOUT | CEPOLL_EPOLLRDHUP | CEPOLL_EPOLLET
    static let relayBudget = 1 << 20
    /// Small messages are copied through this buffer (see `pump`); one per worker, used synchronously.
    static let copyBytes = 16384
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: Worker.copyBytes, alignment: 16)

    init(id: Int, engine: Engine, listenFds: [WorkerListenSpec]) throws(Errno) {
        self.id = id
        self.engine = engine
        loop = engine.loops[id]
        mailbox = engine.inboxes[id]
        routes = RouteCache(engine.publisher)
        lastShutdownSum = routes.table.shutdownSum
        counters = engine.counterBlocks[id]
        layout = engine.layout
        pipes = PipePool(capacity: engine.spec.pipePoolSize, pipeSize: engine.spec.pipeSize, gauge: engine.spec.pipes)
        for l in listenFds { listeners.append((l.fd, l.frontend, l.address, l.deferAccept, .none)) }
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
        for i in listeners.indices {
            let handler = ListenerSocket(worker: self, index: i)
            listenerSockets.append(handler)
            listeners[i].token = try loop.register(listeners[i].fd, events: CEPOLL_EPOLLIN | CEPOLL_EPOLLET, handler)
        }
    }

    deinit {
        unsafe scratch.deallocate()
    }

    static func minOf(_ a: Int?, _ b: Int?) -> Int? {
        switch (a, b) {
        case let (x?, y?): return min(x, y)
        case let (x?, nil): return x
        case let (nil, y?): return y
        default: return nil
        }
    }

    // MARK: - Loop

    func run() {
        loop.turnHandler = self
        loop.run()
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

    // MARK: - Slots

    func allocateSlot() -> Int32 {
        if let s = freeSlots.popLast() { return s }
        let slot = Int32(sessions.count)
        sessions.append(Session(worker: self, slot: slot))
        timers.ensureCapacity(sessions.count)
        return slot
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

    func acceptOnAllListeners() {
        for i in listeners.indices where listeners[i].fd >= 0 { accept(listener: i) }
    }

    func accept(listener i: Int) {
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
            let accepted = IOResult(descriptor: unsafe cepoll_accept4(l.fd, &addr.storage, &addr.length))
            guard case .done(let descriptor) = accepted else {
                giveBack(engine.frontendSessions[fe], to: engine.frontendWaiters[fe])
                giveBack(engine.processSessions, to: engine.processWaiters)
                switch accepted {
                case .interrupted: continue
                case .failed(let e) where e.code == ECONNABORTED: continue
                case .failed(let e) where e.code == EMFILE || e.code == ENFILE || e.code == ENOBUFS || e.code == ENOMEM:
                    // Out of fds or memory: back off briefly instead of spinning on the ready listener.
                    acceptBackoffUntil = now + 100
                    return
                default: return  // EAGAIN: the backlog is empty
                }
            }
            let fd = Int32(descriptor)
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
    func closeListeners() {
        engine.listenerTable.withLock { table in
            for i in listeners.indices where listeners[i].fd >= 0 {
                loop.deregister(listeners[i].fd, listeners[i].token)
                listeners[i].token = .none
                Socket.close(listeners[i].fd)
                listeners[i].fd = -1
                table[id][i] = -1
            }
        }
    }

    func reopenListeners() {
        listenersPaused = false
        guard !softStopping else { return }
        for i in listeners.indices where listeners[i].fd < 0 {
            let backlog = engine.listenBacklog(frontend: listeners[i].frontend)
            guard let fd = try? Socket.listen(on: listeners[i].address, reusePort: true, backlog: backlog,
                                              deferAccept: listeners[i].deferAccept) else { continue }
            listeners[i].fd = fd
            engine.listenerTable.withLock { $0[id][i] = fd }
            listeners[i].token = (try? loop.register(fd, events: CEPOLL_EPOLLIN | CEPOLL_EPOLLET, listenerSockets[i])) ?? .none
        }
        acceptOnAllListeners()
    }

    private func shutdownEverything() {
        for i in sessions.indices where sessions[i].phase != .free {
            closeSession(Int32(i), sessions[i], "K-")
        }
        closeListeners()
        pipes.closeAll()
    }
}

extension Worker: LoopTurnHandler {
    func turnStarting() { refreshRoutes() }

    func nextTimeoutMs(now: UInt64) -> Int32 {
        var timeout = readyList.isEmpty ? timers.timeout(now: now) : 0
        if acceptBackoffUntil > 0 {
            let wait = acceptBackoffUntil > now ? Int32(clamping: acceptBackoffUntil - now) : 0
            timeout = timeout < 0 ? wait : min(timeout, wait)
        }
        return timeout
    }

    func turnEnded(now: UInt64) {
        if !readyList.isEmpty { pumpReadyList() }
        while let slot = timers.popExpired(now: now) { timerFired(slot) }
        if acceptBackoffUntil > 0 && now >= acceptBackoffUntil {
            acceptBackoffUntil = 0
            acceptOnAllListeners()
        }
        if stopping || (softStopping && liveSessions == 0) { loop.stop() }
    }

    func woken() {
        mailbox.drain(into: &messages)
        for m in messages {
            switch m {
            case .grant(let t): granted(t)
            case .pauseListeners: closeListeners(); listenersPaused = true
            case .resumeListeners: reopenListeners()
            case .softStop: softStopping = true; closeListeners()
            case .stop: stopping = true
            case .retryAccept: acceptOnAllListeners()
            case .tableChanged: break  // the refresh at the start of the turn does the work
            }
        }
        messages.removeAll(keepingCapacity: true)
    }
}
