import CEpoll
import Glibc

/// The relay: socket → pipe → socket with splice(2), both directions, edge-triggered; small
/// messages are copied instead (read + send through one per-worker buffer: the same two system
/// calls as two splices, each cheaper), until a read fills that buffer and the flow is bulk.
///
/// EAGAIN from socket→pipe is ambiguous: the socket may be empty, or the pipe may be out of page
/// slots although bytes still fit. So the read side is marked "not ready" only when the pipe is
/// empty; otherwise the pipe is drained first and the read retried (haproxy's raw_sock.c does the
/// same). A FIN is relayed (shutdown(SHUT_WR)) only once the pipe is empty, so no byte is lost, and
/// the other direction keeps flowing (half-close).
extension Worker {
    enum PumpOutcome { case progress, idle, sourceFailed, destinationFailed }

    func pumpSession(_ slot: Int32, _ s: Session) {
        var budget = Worker.relayBudget
        let upBefore = s.up.bytes
        let downBefore = s.down.bytes
        let a = pump(&s.up, from: s.clientFd, to: s.serverFd, budget: &budget, otherHalfDone: s.down.dstShut)
        let b = pump(&s.down, from: s.serverFd, to: s.clientFd, budget: &budget, otherHalfDone: s.up.dstShut)
        let upMoved = s.up.bytes &- upBefore
        let downMoved = s.down.bytes &- downBefore
        if upMoved | downMoved != 0 { account(s, up: upMoved, down: downMoved) }
        // Who failed decides the log's first letter: C(lient) or S(erver) abort during D(ata).
        if a == .sourceFailed || b == .destinationFailed {
            counters.add(layout.server(s.backend, s.server, .clientAborts), 1)
            closeSession(slot, s, "CD")
            return
        }
        if a == .destinationFailed || b == .sourceFailed {
            counters.add(layout.server(s.backend, s.server, .serverAborts), 1)
            engine.serverTroubleHandler?(s.backend, s.server)
            closeSession(slot, s, "SD")
            return
        }
        if s.up.dstShut && s.down.dstShut {
            closeSession(slot, s, "--")
            return
        }
        if a == .progress || b == .progress {
            let t = phaseTimers[s.frontend]
            timers.arm(slot, list: s.up.dstShut || s.down.dstShut ? t.fin : t.idle, now: now)
        }
        if budget <= 0 && !s.inReadyList {
            s.inReadyList = true
            readyList.append(slot)
        }
    }

    /// Moves bytes for one direction until it would block, hits EOF, or spends the budget.
    /// `otherHalfDone`: the opposite direction has relayed its FIN, so this half's FIN ends the
    /// session and the close() that follows sends it; the shutdown(2) call is skipped (HAProxy
    /// closes instead of shutting down a socket whose read side is done, too). Nothing unread is
    /// left on either socket then (both sources hit EOF), so the close sends a FIN, not a reset.
    @inline(__always)
    func pump(_ h: inout RelayHalf, from src: Int32, to dst: Int32, budget: inout Int, otherHalfDone: Bool) -> PumpOutcome {
        var moved = false
        let flags = CEPOLL_SPLICE_F_MOVE | CEPOLL_SPLICE_F_NONBLOCK
        while budget > 0 {
            var step = false
            if !h.bulk && !h.srcEOF && h.srcReady && h.dstReady && h.inPipe == 0 {
                switch copyOnce(&h, from: src, to: dst, budget: &budget) {
                case .progress:
                    moved = true
                    continue
                case .idle: break
                case .sourceFailed: return .sourceFailed
                case .destinationFailed: return .destinationFailed
                }
            }
            if !h.srcEOF && h.srcReady {
                if !h.pipe.isOpen {
                    guard let p = pipes.take() else {
                        // No pipe to spare (`maxpipes`, or out of fds): copy through the worker's
                        // buffer instead, as HAProxy falls back to recv/send.
                        if h.bulk && h.dstReady {
                            h.bulk = false
                            continue
                        }
                        break
                    }
                    h.pipe = p
                }
                let room = h.pipe.bytes - h.inPipe
                if room > 0 {
                    switch IOResult(cepoll_splice(src, h.pipe.writeEnd, UInt(room), flags)) {
                    case .done(let n):
                        h.inPipe += n
                        h.bytes &+= UInt64(n)
                        budget -= n
                        step = true
                        // A read well short of a page drained the socket (the pipe had room for more),
                        // and epoll reports every later arrival: skip the read that would say EAGAIN.
                        // Not after RDHUP: the FIN that came with this data must still be read.
                        if n < 4096 && n < room && !h.srcHup { h.srcReady = false }
                    case .end:
                        h.srcEOF = true
                        step = true
                    case .wouldBlock:
                        if h.inPipe == 0 { h.srcReady = false }
                    case .interrupted:
                        break
                    case .failed:
                        return .sourceFailed
                    }
                }
            }
            if h.inPipe > 0 && h.dstReady {
                switch IOResult(cepoll_splice(h.pipe.readEnd, dst, UInt(h.inPipe), flags)) {
                case .done(let n):
                    h.inPipe -= n
                    step = true
                case .wouldBlock:
                    h.dstReady = false
                case .interrupted:
                    break
                case .end, .failed:  // nothing taken from a non-empty pipe: the socket is gone
                    return .destinationFailed
                }
            }
            if !step { break }
            moved = true
        }
        if h.inPipe == 0 && h.pipe.isOpen {
            pipes.giveBack(h.pipe)
            h.pipe = .none
        }
        if h.srcEOF && h.inPipe == 0 && !h.dstShut {
            if !otherHalfDone { _ = cepoll_shutdown(dst, Int32(SHUT_WR)) }
            h.dstShut = true
            moved = true
        }
        return moved ? .progress : .idle
    }

    /// One read into the worker's buffer and one send of it. Bytes the destination does not take at
    /// once go into the half's pipe, ahead of anything read later, so order is kept.
    private func copyOnce(_ h: inout RelayHalf, from src: Int32, to dst: Int32, budget: inout Int) -> PumpOutcome {
        let n: Int
        switch IOResult(unsafe cepoll_read(src, scratch, UInt(Worker.copyBytes))) {
        case .done(let count): n = count
        case .end:
            h.srcEOF = true
            return .progress
        case .wouldBlock:
            h.srcReady = false
            return .idle
        case .interrupted: return .idle
        case .failed: return .sourceFailed
        }
        h.bytes &+= UInt64(n)
        budget -= n
        if n == Worker.copyBytes { h.bulk = true } else if n < 4096 && !h.srcHup { h.srcReady = false }
        let sent: Int
        switch IOResult(unsafe cepoll_write(dst, scratch, UInt(n))) {
        case .done(let count): sent = count
        case .end: sent = 0
        case .wouldBlock, .interrupted:
            h.dstReady = false
            sent = 0
        case .failed: return .destinationFailed
        }
        if sent < n {
            let rest = n - sent
            if h.pipe.isOpen && h.pipe.bytes < rest {
                pipes.giveBack(h.pipe)  // empty, but too small to park this rest
                h.pipe = .none
            }
            if !h.pipe.isOpen {
                // No pipe to hold the bytes (out of fds): end the session rather than drop them.
                guard let p = pipes.take(minimum: rest, pastLimit: true) else { return .destinationFailed }
                h.pipe = p
            }
            // SAFETY: `sent` < `n` <= copyBytes, so the rest lies inside the buffer. The pipe is
            // empty (the copy path runs only then) and holds at least `rest`, so the whole rest fits.
            guard unsafe cepoll_write_pipe(h.pipe.writeEnd, scratch + sent, UInt(rest)) == rest else {
                return .destinationFailed
            }
            h.inPipe = rest
        }
        return .progress
    }

    private func account(_ s: Session, up: UInt64, down: UInt64) {
        counters.add(layout.frontend(s.frontend, .bytesIn), up)
        counters.add(layout.frontend(s.frontend, .bytesOut), down)
        counters.add(layout.backend(s.backend, .bytesIn), up)
        counters.add(layout.backend(s.backend, .bytesOut), down)
        counters.add(layout.server(s.backend, s.server, .bytesIn), up)
        counters.add(layout.server(s.backend, s.server, .bytesOut), down)
    }

    /// Continues relays that used up their budget, after the other ready sessions had their turn.
    func pumpReadyList() {
        swap(&readyList, &readyScratch)
        for slot in readyScratch {
            let s = sessions[Int(slot)]
            s.inReadyList = false
            if s.phase == .established { pumpSession(slot, s) }
        }
        readyScratch.removeAll(keepingCapacity: true)
    }

    /// Ends a session: closes both sockets (a FIN to each peer), frees its pipes and slot, gives its
    /// server slot to the next queued session, and hands the log record over.
    func closeSession(_ slot: Int32, _ s: Session, _ termination: StaticString) {
        guard s.phase != .free else { return }
        timers.disarm(slot)
        if let t = s.ticket {
            // Still queued: withdraw; if a grant won the race, `granted` releases the slot later.
            _ = engine.backends[s.backend].cancel(t)
            s.ticket = nil
        }
        // Closing a socket takes it out of the epoll set: the registrations are just forgotten.
        if s.clientFd >= 0 {
            loop.forget(s.clientToken)
            s.clientToken = .none
            Socket.close(s.clientFd)
        }
        closeServerSocket(slot, s)
        if s.up.pipe.isOpen { pipes.discard(s.up.pipe) }
        if s.down.pipe.isOpen { pipes.discard(s.down.pipe) }
        let logIt = engine.spec.frontends[s.frontend].logSessions && engine.sessionLogger != nil
        var record: SessionRecord?
        if logIt {
            record = makeRecord(s, termination)
        }
        let shared = engine.backends[s.backend]
        if s.server >= 0 && s.phase != .queued {
            shared.releaseServerSlot(s.server, route: routes.table.backends[s.backend])
        }
        shared.sessions.release()
        engine.frontendSessions[s.frontend].release()
        engine.processSessions.release()
        engine.wake(engine.processWaiters, engine.frontendWaiters[s.frontend])
        s.clientFd = -1
        s.serverFd = -1
        s.up.pipe = .none
        s.down.pipe = .none
        s.server = -1
        freeSlot(slot)
        if let record { engine.sessionLogger?(record) }
    }

    private func makeRecord(_ s: Session, _ termination: StaticString) -> SessionRecord {
        let shared = engine.backends[s.backend]
        return SessionRecord(
            frontend: s.frontend, backend: s.backend, server: s.server, client: s.clientAddress,
            acceptWallMs: s.acceptWallMs, queueMs: s.queueMs < 0 && s.server >= 0 ? 0 : s.queueMs,
            connectMs: s.connectMs, totalMs: Int(now - s.acceptMs),
            bytesToClient: s.down.bytes, bytesToServer: s.up.bytes, termination: termination.description,
            processSessions: engine.processSessions.value, frontendSessions: engine.frontendSessions[s.frontend].value,
            backendSessions: shared.sessions.value,
            serverSessions: s.server >= 0 ? shared.serverSessions[s.server].value : 0,
            retries: s.retries, redispatched: s.redispatched,
            serverQueue: s.server >= 0 ? shared.queued(onServer: s.server) : 0, backendQueue: shared.queuedInBackend)
    }
}
