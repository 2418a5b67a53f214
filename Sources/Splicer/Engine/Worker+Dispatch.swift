import CEpoll
import Glibc

/// Getting a session to a server: balancing, queueing, connecting, retries and redispatch
/// (HAProxy's `retries` / `option redispatch` rules, haproxy-semantics.md §5.3).
extension Worker {
    func startSession(clientFd: Int32, address: SocketAddress, frontend fe: Int) {
        let slot = allocateSlot()
        let s = sessions[Int(slot)]
        liveSessions += 1
        let be = engine.spec.frontends[fe].backend
        s.reset(frontend: fe, backend: be, clientFd: clientFd, address: address, now: now, wallMs: Worker.wallClockMs())
        s.retriesLeft = engine.spec.backends[be].retries
        // Data may already be waiting: start with the read side marked ready.
        s.up.srcReady = true
        s.down.dstReady = true
        s.up.bulk = engine.spec.frontends[fe].alwaysSpliceRequest
        s.down.bulk = engine.spec.frontends[fe].alwaysSpliceResponse
        // Counted before anything can fail: closeSession releases exactly what is held here.
        counters.add(layout.frontend(fe, .sessions), 1)
        // The backend's stot counts sessions, whatever became of them (HAProxy counts a session
        // refused for want of a server, or timed out in the queue, too).
        counters.add(layout.backend(be, .sessions), 1)
        engine.backends[be].sessions.forceAcquire()
        guard let token = try? loop.register(clientFd, events: eventMask, s, tag: Session.clientTag) else {
            closeSession(slot, s, "R-")
            return
        }
        s.clientToken = token
        assign(slot, s, avoid: -1)
    }

    /// Chooses a server (or the queue) for a session that has none, from the newest routing table
    /// (one atomic load: a table published while this worker slept is never missed).
    ///
    /// `avoid`: the server a failed or abandoned attempt was on (-1 for a new session). Balancing
    /// again counts, on that server and the backend, a redispatch if the session ends up anywhere
    /// else (another server, the queue, nowhere) and a retry if it lands on the same server, as
    /// HAProxy's `assign_server_and_queue()` does.
    func assign(_ slot: Int32, _ s: Session, avoid: Int) {
        refreshRoutes()
        let shared = engine.backends[s.backend]
        let route = routes.table.backends[s.backend]
        // Fairness: once others wait, newcomers queue behind them instead of taking a freed slot;
        // under `balance source` behind those of the server their address hashes to.
        if shared.anyWaiting && !route.eligibleServers.isEmpty {
            let bound = engine.spec.backends[s.backend].balance == .source
                ? shared.hashedServer(route, clientHash: s.clientAddress.ipHash) : -1
            countRebalance(s, from: avoid, to: -1)
            enqueue(slot, s, bound: bound, route: route)
            return
        }
        switch shared.pick(route, clientHash: s.clientAddress.ipHash, avoid: avoid) {
        case .server(let server):
            countRebalance(s, from: avoid, to: server)
            // lbtot counts a balancing choice that names a server other than the one just left.
            if server != avoid { counters.add(layout.server(s.backend, server, .lbPicks), 1) }
            connect(slot, s, server: server, firstAttempt: true)
        case .full(let bound):
            countRebalance(s, from: avoid, to: -1)
            enqueue(slot, s, bound: bound, route: route)
        case .noServer:
            countRebalance(s, from: avoid, to: -1)
            if engine.spec.backends[s.backend].queueWhenNoServer {
                enqueue(slot, s, bound: -1, route: route)
            } else {
                // HAProxy accepts, then closes at once with a FIN (`<NOSRV> ... SC`), and counts a
                // connection error on the backend.
                counters.add(layout.backend(s.backend, .connectErrors), 1)
                closeSession(slot, s, "SC")
            }
        }
    }

    /// A session that was on server `from` was balanced again and went to `to` (-1: no server).
    private func countRebalance(_ s: Session, from: Int, to: Int) {
        guard from >= 0 else { return }
        if to == from {
            counters.add(layout.server(s.backend, from, .retries), 1)
            counters.add(layout.backend(s.backend, .retries), 1)
        } else {
            s.redispatched = true
            counters.add(layout.server(s.backend, from, .redispatches), 1)
            counters.add(layout.backend(s.backend, .redispatches), 1)
        }
    }

    private func enqueue(_ slot: Int32, _ s: Session, bound: Int, route: BackendRoute) {
        let t = QueueTicket(worker: id, backend: s.backend, slot: slot, generation: s.generation, boundServer: bound,
                            enqueuedMs: now)
        s.ticket = t
        s.phase = .queued
        timers.arm(slot, list: phaseTimers[s.frontend].queue, now: now)
        engine.backends[s.backend].enqueue(t, route: route)
    }

    /// A queue dispatcher (any thread) gave this worker's session a slot on `t.grantedServer`.
    func granted(_ t: QueueTicket) {
        let s = sessions[Int(t.slot)]
        guard s.generation == t.generation, s.phase == .queued, s.ticket === t else {
            // The session is gone: pass the slot on to the next waiting session.
            engine.backends[t.backend].releaseServerSlot(t.grantedServer, route: routes.table.backends[t.backend])
            return
        }
        s.ticket = nil
        s.queueMs = Int(now - t.enqueuedMs)
        counters.add(layout.server(s.backend, t.grantedServer, .lbPicks), 1)
        connect(t.slot, s, server: t.grantedServer, firstAttempt: true)
    }

    /// Connects to `server`, whose slot the session already holds. `firstAttempt`: the server was
    /// just chosen (balancing or the queue), rather than tried again after a failure.
    func connect(_ slot: Int32, _ s: Session, server: Int, firstAttempt: Bool) {
        s.server = server
        s.phase = .connecting
        s.connectStartMs = now
        let route = routes.table.backends[s.backend]
        s.shutdownEpoch = route.shutdownEpochs[server]
        // A server's stot counts every connection attempt made to it, retries included (HAProxy).
        counters.add(layout.server(s.backend, server, .sessions), 1)
        if firstAttempt { engine.backends[s.backend].lastSession[server].set(now) }
        var address = route.addresses[server]
        if address.port == 0, let local = Socket.localAddress(of: s.clientFd) {
            address.port = local.port  // `server x 10.0.0.1` relays to the port the client dialled
        }
        let attempt: (fd: Int32, connected: Bool)
        do {
            attempt = try Socket.startConnect(to: address)
        } catch {
            connectFailed(slot, s, timedOut: false)
            return
        }
        s.serverFd = attempt.fd
        guard let token = try? loop.register(attempt.fd, events: eventMask, s, tag: Session.serverTag) else {
            connectFailed(slot, s, timedOut: false)
            return
        }
        s.serverToken = token
        if attempt.connected {
            established(slot, s)
        } else {
            timers.arm(slot, list: phaseTimers[s.frontend].connect, now: now)
        }
    }

    func established(_ slot: Int32, _ s: Session) {
        s.phase = .established
        s.connectMs = Int(now - s.connectStartMs)
        s.up.dstReady = true
        s.down.srcReady = true
        timers.arm(slot, list: phaseTimers[s.frontend].idle, now: now)
        pumpSession(slot, s)
    }

    func connectFailed(_ slot: Int32, _ s: Session, timedOut: Bool) {
        closeServerSocket(slot, s)
        let server = s.server
        engine.serverTroubleHandler?(s.backend, server)
        guard s.retriesLeft > 0 else {
            // HAProxy's econ counts sessions that gave up, once, on the server tried last; each
            // failed attempt before that is a retry or a redispatch (`back_handle_st_cer()`).
            counters.add(layout.server(s.backend, server, .connectErrors), 1)
            counters.add(layout.backend(s.backend, .connectErrors), 1)
            closeSession(slot, s, timedOut ? "sC" : "SC")
            return
        }
        s.retriesLeft -= 1
        s.retries += 1
        let spec = engine.spec.backends[s.backend]
        let route = routes.table.backends[s.backend]
        // Any algorithm but a hash one may move at once when another server is active (HAProxy 2.6
        // tests `lbprm.algo & BE_LB_KIND != BE_LB_KIND_HI`: roundrobin, static-rr, leastconn, first).
        let notHashed = spec.balance != .source
        let redispatchNow = spec.redispatch
            && (!route.eligible[server] || (notHashed && route.eligibleServers.count > 1) || s.retriesLeft == 0)
        if redispatchNow {
            // Counted as a redispatch or a retry once balancing has chosen (see `assign`).
            s.server = -1
            engine.backends[s.backend].releaseServerSlot(server, route: route)
            assign(slot, s, avoid: server)
        } else {
            counters.add(layout.server(s.backend, server, .retries), 1)
            counters.add(layout.backend(s.backend, .retries), 1)
            // Same server again after min(timeout connect, 1 s), keeping its slot.
            s.phase = .retryWait
            timers.arm(slot, list: phaseTimers[s.frontend].retry, now: now)
        }
    }

    func timerFired(_ slot: Int32) {
        let s = sessions[Int(slot)]
        switch s.phase {
        case .free:
            return
        case .queued:
            if let t = s.ticket, engine.backends[s.backend].cancel(t) {
                s.ticket = nil
                counters.add(layout.backend(s.backend, .queueTimeouts), 1)
                // HAProxy counts a queue timeout as a connection error (on the server too when the
                // session waited in that server's own queue).
                counters.add(layout.backend(s.backend, .connectErrors), 1)
                if t.queueServer >= 0 { counters.add(layout.server(s.backend, t.queueServer, .connectErrors), 1) }
                s.queueMs = Int(now - t.enqueuedMs)
                closeSession(slot, s, "sQ")
            }
            // else: a grant is already on its way to the inbox and will take over.
        case .connecting:
            connectFailed(slot, s, timedOut: true)
        case .retryWait:
            // The server left the table meanwhile: with `option redispatch`, pick again (HAProxy
            // redispatches when "the server is no longer running").
            let route = routes.table.backends[s.backend]
            if engine.spec.backends[s.backend].redispatch && !route.eligible[s.server] {
                redispatchNow(slot, s, route: route)
            } else {
                connect(slot, s, server: s.server, firstAttempt: false)
            }
        case .established:
            let side = phaseTimers[s.frontend].idleSide
            closeSession(slot, s, side == UInt8(ascii: "c") ? "cD" : "sD")
        }
    }

    func serverEvent(_ slot: Int32, _ s: Session, _ ev: UInt32) {
        if s.phase == .connecting {
            guard ev & (CEPOLL_EPOLLOUT | CEPOLL_EPOLLERR | CEPOLL_EPOLLHUP) != 0 else { return }
            // Writable without an error or hang-up: the connect succeeded (no getsockopt needed).
            if ev & (CEPOLL_EPOLLERR | CEPOLL_EPOLLHUP) == 0 {
                established(slot, s)
            } else {
                connectFailed(slot, s, timedOut: false)
            }
            return
        }
        guard s.phase == .established else { return }
        if ev & (CEPOLL_EPOLLIN | CEPOLL_EPOLLRDHUP | CEPOLL_EPOLLHUP | CEPOLL_EPOLLERR) != 0 { s.down.srcReady = true }
        if ev & (CEPOLL_EPOLLRDHUP | CEPOLL_EPOLLHUP | CEPOLL_EPOLLERR) != 0 { s.down.srcHup = true }
        if ev & (CEPOLL_EPOLLOUT | CEPOLL_EPOLLHUP | CEPOLL_EPOLLERR) != 0 { s.up.dstReady = true }
        pumpSession(slot, s)
    }

    func clientEvent(_ slot: Int32, _ s: Session, _ ev: UInt32) {
        if ev & (CEPOLL_EPOLLIN | CEPOLL_EPOLLRDHUP | CEPOLL_EPOLLHUP | CEPOLL_EPOLLERR) != 0 { s.up.srcReady = true }
        if ev & (CEPOLL_EPOLLRDHUP | CEPOLL_EPOLLHUP | CEPOLL_EPOLLERR) != 0 { s.up.srcHup = true }
        if ev & (CEPOLL_EPOLLOUT | CEPOLL_EPOLLHUP | CEPOLL_EPOLLERR) != 0 { s.down.dstReady = true }
        switch s.phase {
        case .established:
            pumpSession(slot, s)
        case .queued:
            // A client that hangs up while queued is dropped (HAProxy logs `CQ`).
            if ev & (CEPOLL_EPOLLRDHUP | CEPOLL_EPOLLHUP | CEPOLL_EPOLLERR) != 0 {
                if let t = s.ticket, engine.backends[s.backend].cancel(t) {
                    s.ticket = nil
                    s.queueMs = Int(now - t.enqueuedMs)
                    closeSession(slot, s, "CQ")
                }
            }
        default:
            // Connecting: the request waits in the socket buffer until the server is up.
            if ev & (CEPOLL_EPOLLHUP | CEPOLL_EPOLLERR) != 0 { closeSession(slot, s, "CC") }
        }
    }

    /// shutdown-sessions: a new table moved some servers' shutdown epochs; cut their established
    /// sessions (HAProxy kills streams with an established server connection). Sessions still
    /// connecting or waiting to retry are not killed: with `option redispatch` they pick again now.
    func cutSessionsOfShutdownServers() {
        let table = routes.table
        for i in sessions.indices {
            let s = sessions[i]
            guard s.server >= 0, s.phase == .established || s.phase == .connecting || s.phase == .retryWait else {
                continue
            }
            let route = table.backends[s.backend]
            guard route.shutdownEpochs[s.server] != s.shutdownEpoch else { continue }
            if s.phase != .established {
                if engine.spec.backends[s.backend].redispatch { redispatchNow(Int32(i), s, route: route) }
                continue
            }
            switch route.shutdownReasons[s.server] {
            case UInt8(ascii: "U"): closeSession(Int32(i), s, "U-")
            case UInt8(ascii: "K"): closeSession(Int32(i), s, "K-")
            default: closeSession(Int32(i), s, "D-")
            }
        }
    }

    /// Abandons the current server (connect in progress or retry pending) and balances again.
    func redispatchNow(_ slot: Int32, _ s: Session, route: BackendRoute) {
        closeServerSocket(slot, s)
        let old = s.server
        s.server = -1
        timers.disarm(slot)
        engine.backends[s.backend].releaseServerSlot(old, route: route)
        assign(slot, s, avoid: old)
    }

    /// Closes the session's server socket, if any (a failed or abandoned connect). The close
    /// takes it out of the epoll set, so its registration is just forgotten (no EPOLL_CTL_DEL).
    func closeServerSocket(_ slot: Int32, _ s: Session) {
        guard s.serverFd >= 0 else { return }
        loop.forget(s.serverToken)
        s.serverToken = .none
        Socket.close(s.serverFd)
        s.serverFd = -1
    }

    static func wallClockMs() -> Int64 {
        var ts = timespec()
        unsafe clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
