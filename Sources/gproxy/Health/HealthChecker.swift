import Atomics
import Dispatch
import Logging
import CEpoll
import Glibc
import Splicer

/// The health checker: one thread (`gproxy-chk`) running an `EventLoop`, however many servers
/// there are. It runs HAProxy's check schedule and state machine for every `server ... check`,
/// logs transitions in HAProxy's words, and on every change builds a new immutable routing table
/// and publishes it to the workers with one atomic swap (`Engine.publish`).
///
/// The checker thread is the only one that touches server state. Other threads change it by
/// `perform` (a job run on the checker thread: runtime socket, stats admin form) and read it from
/// the `statusBoard`, an immutable snapshot published by atomic swap beside the routing table.
/// Neither the workers nor the control thread ever wait on a lock the checker holds for long.
final class HealthChecker: @unchecked Sendable {
    let engine: Engine
    /// Per engine backend, per server. Checker thread only (or before `start`/after `stop`).
    let servers: [[ServerHealth]]
    /// What stats, session logs and reloads read.
    let statusBoard: ServerStatusBoard
    /// Backends whose servers changed since the last status publish.
    private var statusDirty: [Bool]
    private var lastStatusPublishMs: UInt64 = 0
    /// A server's health changed (not only its last check): publish at the end of this turn.
    private var statusUrgent = false
    /// Check results alone are published at most this often (a state change publishes at once).
    static let statusPublishIntervalMs: UInt64 = 200
    /// Whether the checker thread runs (jobs are then posted to its loop); guarded by `runLock`,
    /// which also orders `perform` callers while no thread runs.
    private let runLock = PThreadLock()
    private var threadRunning = false
    /// A routing-relevant change happened this turn: publish a new table at its end.
    private var tableDirty = false
    /// One swift-log logger per backend, writing to its log targets (the proxy's own, or the global
    /// ones with `log global`) and, in HAProxy's console format, to stderr.
    let loggers: [Logger]
    /// `listen` sections are called "proxy" in HAProxy's messages, `backend` sections "backend".
    private let backendWords: [String]
    private let logHealthChecks: [Bool]
    let loop: EventLoop
    /// Workers signal this (no lock) when they see a server in trouble.
    private let wake: EventFD
    private var wakeToken: LoopToken?
    private var thread: pthread_t?
    private var generation: UInt64 = 0
    /// Backends that had a usable server in the last published table (for "has no server available!").
    private var hadServer: [Bool]
    /// Patroni-aware backends: their policy, the current single writer (primary role), and whether
    /// the cluster is converging (checks then run every `fastInterMs`).
    let policies: [PatroniPolicy?]
    var writer: [Int?]
    var converging: [Bool]
    /// Due checks and probe deadlines (see CheckSchedule).
    private var timetable = CheckSchedule()
    /// `patroni ... discover` state per backend.
    var discovery: [DiscoveryState]
    /// Set by workers (`noteServerTrouble`), taken by the checker loop: the flag per backend, and
    /// the last server that failed (+1; 0 = none).
    let troubled: [ManagedAtomic<Bool>]
    let troubledServer: [ManagedAtomic<Int>]
    /// Leadership conflicts already logged (backend, challenger), so a conflict is reported once.
    var reportedConflicts: Set<[Int]> = []

    /// `global spread-checks`: each interval varies by up to this many percent either way.
    let spreadPercent: Int

    init(engine: Engine, servers: [[ServerHealth]], log: EventLog, sinks: [LogSink], backendWords: [String],
         logHealthChecks: [Bool], spreadPercent: Int = 0) throws {
        self.spreadPercent = spreadPercent
        self.engine = engine
        self.servers = servers
        loggers = sinks.map { log.logger(sink: $0) }
        self.backendWords = backendWords
        self.logHealthChecks = logHealthChecks
        loop = try EventLoop()
        wake = try EventFD()
        hadServer = servers.map { list in list.contains { $0.state.usable } }
        policies = servers.map { $0.first?.patroni }
        writer = servers.map { _ in nil }
        converging = policies.map { $0 != nil }
        troubled = servers.map { _ in ManagedAtomic(false) }
        troubledServer = servers.map { _ in ManagedAtomic(0) }
        discovery = servers.map { _ in DiscoveryState() }
        statusBoard = ServerStatusBoard(ServerStatusSnapshot(backends: servers.map { $0.map(ServerStatus.init) }))
        statusDirty = servers.map { _ in false }
        for s in servers.joined() { s.owner = self }
        scheduleFirstChecks(now: Clock.nowMs())
        loop.turnHandler = self
        wakeToken = try loop.register(wake.fd, events: CEPOLL_EPOLLIN, WakeHandler(wake: wake))
    }

    /// HAProxy spreads first checks: the i-th of n checks starts at now + mininter * i / n.
    private func scheduleFirstChecks(now: UInt64) {
        let checked = servers.joined().filter(\.checked)
        guard !checked.isEmpty else { return }
        let inters = checked.map(\.config.inter)
        let mininter = inters.filter { $0 >= 1000 }.min() ?? inters.max() ?? 1000
        for (i, s) in checked.enumerated() {
            // Patroni-aware members are asked at once: nothing is routed until they answer.
            schedule(s, at: now + (s.patroni != nil ? UInt64(i) : UInt64(mininter * i / checked.count)))
        }
    }

    /// Publishes the table for the start-up states (before the engine's workers start).
    func publishInitialTable() {
        publishTable()
        publishStatus(now: Clock.nowMs(), force: true)
    }

    func start() {
        publishTable()
        publishStatus(now: Clock.nowMs(), force: true)
        runLock.withLock { threadRunning = true }
        thread = NamedThread.start(name: "gproxy-chk") { [self] in
            loop.run()
            runLock.withLock { threadRunning = false }
            // Jobs posted just before the flag fell: their callers are waiting.
            loop.runPosted()
            for s in servers.joined() { closeProbe(s) }
            for b in discovery.indices { closeDiscoveryProbe(b) }
        }
    }

    func stop() {
        guard let t = thread else { return }
        loop.stop()
        NamedThread.join(t)
        thread = nil
    }

    /// Runs `body` on the checker thread, between two turns, and returns its result (inline when
    /// the thread is not running). The caller waits at most one checker turn.
    func perform<T>(_ body: @escaping () -> T) -> T {
        let box = PerformBox<T>()
        let job = UncheckedJob(body)
        let queued: Bool = runLock.withLock {
            guard threadRunning else { return false }
            // A job posted while the loop ends still runs: the loop drains its inbox on exit.
            loop.post { [self] in
                box.value = job.body()
                // Published before the caller resumes: what it reads next shows its own change.
                publishStatus(now: Clock.nowMs(), force: true)
                box.done.signal()
            }
            return true
        }
        if !queued {
            // No checker thread: nothing else touches the state; the lock orders callers.
            return runLock.withLock {
                let value = body()
                publishStatus(now: Clock.nowMs(), force: true)
                return value
            }
        }
        box.done.wait()
        return box.value!
    }

    /// Marks a backend's servers as changed for the next status publish.
    func touched(_ b: Int) { statusDirty[b] = true }

    /// Publishes a new status snapshot with the changed backends rebuilt, if any changed and it is
    /// due (`force`: now, after a state change or an admin command).
    func publishStatus(now: UInt64, force: Bool) {
        guard statusDirty.contains(true) || force else { return }
        guard force || Clock.elapsed(lastStatusPublishMs, now) >= Self.statusPublishIntervalMs else { return }
        let previous = statusBoard.load().backends
        let backends = servers.indices.map { b in
            statusDirty[b] || force ? servers[b].map(ServerStatus.init) : previous[b]
        }
        statusBoard.publish(ServerStatusSnapshot(backends: backends))
        for b in statusDirty.indices { statusDirty[b] = false }
        lastStatusPublishMs = now
    }

    // MARK: - Loop turns

    /// Probe sockets report here (edge-triggered: one event when the connect completes, one when
    /// the reply arrives; no EPOLL_CTL_MOD in between).
    func probeEvent(_ s: ServerHealth, events: UInt32) {
        if progress(s, events: events, now: Clock.nowMs()) { tableDirty = true }
    }

    func discoveryEvent(_ b: Int, events: UInt32) {
        if discoveryProgress(b, now: Clock.nowMs(), events: events, timedOut: false) { tableDirty = true }
    }

    /// Workers' trouble reports (Patroni-aware backends): the writer may be gone, ask everyone now.
    private func takeTroubleReports(now: UInt64) {
        for b in troubled.indices where troubled[b].exchange(false, ordering: .relaxed) {
            let failed = troubledServer[b].exchange(0, ordering: .relaxed) - 1
            if writerFailed(b, server: failed, now: now) { tableDirty = true }
            if let p = policies[b] {
                for m in servers[b] where m.probe == nil && m.checked {
                    schedule(m, at: min(m.nextCheckMs, now + UInt64(min(p.fastInterMs, 50))))
                }
            }
        }
    }

    private func runTimetable(now: UInt64) {
        while let e = timetable.popDeadline(upTo: now) {
            let s = servers[Int(e.backend)][Int(e.server)]
            if let p = s.probe, now >= p.nextDeadline, finish(s, p.timedOut(now: now), now: now) { tableDirty = true }
        }
        while let e = timetable.popDue(upTo: now) {
            let s = servers[Int(e.backend)][Int(e.server)]
            // Stale entries (rescheduled, in maintenance, already running) are dropped.
            if s.probe == nil, s.checked, s.state.admin != .maint, s.nextCheckMs == e.time, launch(s, now: now) {
                tableDirty = true
            }
        }
        for b in discovery.indices where policies[b]?.discover == true {
            if let p = discovery[b].probe, now >= p.nextDeadline, discoveryProgress(b, now: now, timedOut: true) {
                tableDirty = true
            }
            discoverIfDue(b, now: now)
        }
    }

    func closeProbe(_ s: ServerHealth) {
        guard var p = s.probe else { return }
        if let t = s.probeToken { loop.deregister(p.fd, t) }
        s.probeToken = nil
        p.close()
        s.probe = nil
    }

    func closeDiscoveryProbe(_ b: Int) {
        guard var p = discovery[b].probe else { return }
        if let t = discovery[b].token { loop.deregister(p.fd, t) }
        discovery[b].token = nil
        p.close()
        discovery[b].probe = nil
    }

    /// Starts a check; returns true if it finished at once and changed the state.
    private func launch(_ s: ServerHealth, now: UInt64) -> Bool {
        guard let addr = s.checkAddress else { return false }
        var p = CheckProbe(nowMs: now, connectTimeoutMs: s.connectTimeoutMs, totalTimeoutMs: s.totalTimeoutMs)
        s.noteCheckStarted(now: now)
        touched(s.backend)
        switch p.start(address: addr, now: now) {
        case .finished(let r):
            return finish(s, r, now: now)
        case .pending:
            s.probe = p
            timetable.probeStarted(s, connectDeadline: p.connectDeadlineMs, deadline: p.deadlineMs)
            s.probeToken = try? loop.register(p.fd, events: Self.probeEvents, s)
            return false
        }
    }

    private func progress(_ s: ServerHealth, events: UInt32, now: UInt64) -> Bool {
        guard var p = s.probe else { return false }
        let step = p.onEvent(request: s.request, expects: s.expects, readToEnd: s.patroni != nil, events: events, now: now)
        s.probe = p
        if case .finished(let r) = step {
            if s.patroni != nil { s.answer = PatroniAnswer.parse(p.response) }
            return finish(s, r, now: now)
        }
        return false
    }

    /// Applies a check result; returns true when the server changed state (a new table is due).
    private func finish(_ s: ServerHealth, _ r: CheckResult, now: UInt64) -> Bool {
        closeProbe(s)
        touched(s.backend)
        let previousStatus = s.last?.status
        s.last = r
        if !r.passed && s.state.health > 0 { s.checkFailures += 1 }
        let before = s.state
        defer { if s.state != before { statusUrgent = true } }
        if s.patroni != nil { return patroniFinish(s, r, now: now) }
        let transition = s.state.record(passed: r.passed)
        // The next check is timed from the end of this one (haproxy-semantics.md §3.3).
        let inter = s.state.interval(inter: s.config.inter, fastinter: s.config.fastinter, downinter: s.config.downinter)
        schedule(s, at: now + UInt64(spread(inter)))
        if logHealthChecks[s.backend] && (before != s.state || r.status != previousStatus) {
            let verb = r.passed ? "succeeded" : "failed"
            loggers[s.backend].event(.notice, "Health check for \(s.isBackup ? "backup " : "")server \(s.backendName)/\(s.name) \(verb), "
                + "\(r.logDetail), status: \(s.state.progressText).")
        }
        guard let transition else { return false }
        apply(transition, to: s, reason: logHealthChecks[s.backend] ? nil : r.logDetail, now: now)
        return true
    }

    /// Bookkeeping and logs for an UP/DOWN change (from a check or an admin action).
    func apply(_ transition: HealthState.Transition, to s: ServerHealth, reason: String?, now: UInt64,
               cutSessions: Bool = true) {
        let prefix = s.isBackup ? "Backup Server" : "Server"
        let because = reason.map { ", \($0)" } ?? ""
        switch transition {
        case .wentDown:
            s.noteTransition(now: now, up: false)
            if s.config.shutdownSessionsOnDown && cutSessions { s.cutSessions(reason: "D") }
            let sessions = engine.backends[s.backend].serverSessions[s.server].value
            let queued = engine.backends[s.backend].queued(onServer: s.server)
            loggers[s.backend].event(.alert, "\(prefix) \(s.backendName)/\(s.name) is DOWN\(because). \(leftText(s.backend, "left"))"
                + " \(sessions) sessions active, 0 requeued, \(queued) remaining in queue.")
        case .wentUp:
            s.noteTransition(now: now, up: true)
            if s.config.shutdownBackupSessionsOnUp && !s.isBackup && s.userWeight > 0 {
                for other in servers[s.backend] where other.isBackup { other.cutSessions(reason: "U") }
            }
            let queued = engine.backends[s.backend].queuedInBackend
            loggers[s.backend].event(.notice, "\(prefix) \(s.backendName)/\(s.name) is UP\(because). \(leftText(s.backend, "online"))"
                + " 0 sessions requeued, \(queued) total in queue.")
        }
    }

    /// "2 active and 0 backup servers left." (+ " Running on backup." when only backups remain).
    func leftText(_ b: Int, _ word: String) -> String {
        let active = servers[b].filter { !$0.isBackup && $0.state.usable }.count
        let backup = servers[b].filter { $0.isBackup && $0.state.usable }.count
        var t = "\(active) active and \(backup) backup servers \(word)."
        if active == 0 && backup > 0 && word == "left" { t += " Running on backup." }
        return t
    }

    /// Builds and publishes the routing table for the current states (checker thread). The status
    /// is published first: whoever sees the table's effect (a cut session) then reads a status that
    /// explains it.
    func publishTable() {
        publishStatus(now: Clock.nowMs(), force: true)
        generation += 1
        let states = servers.indices.map { routingStates(backend: $0) }
        let table = RoutingTable(generation: generation, spec: engine.spec, states: states)
        engine.publish(table)
        for b in servers.indices {
            let has = !table.backends[b].eligibleServers.isEmpty
            if hadServer[b] && !has {
                let name = engine.spec.backends[b].name
                loggers[b].event(.emerg, "\(backendWords[b]) \(name) has no server available!",
                          console: "\(backendWords[b]) '\(name)' has no server available!")
            }
            hadServer[b] = has
        }
    }

    /// Edge-triggered: one event when the connect completes, one when the reply arrives; no
    /// EPOLL_CTL_MOD in between and no read that can only say EAGAIN.
    static let probeEvents = CEPOLL_EPOLLIN | CEPOLL_EPOLLOUT | CEPOLL_EPOLLRDHUP | CEPOLL_EPOLLET

    /// An interval with `spread-checks` applied (HAProxy adds a random ±pct% to each one).
    func spread(_ ms: Int) -> Int { HealthChecker.spread(ms, percent: spreadPercent) }

    static func spread(_ ms: Int, percent: Int) -> Int {
        guard percent > 0, ms > 0 else { return ms }
        let delta = ms * percent / 100
        return max(1, ms + Int.random(in: -delta...delta))
    }

    /// Sets when `s` is checked next (checker thread).
    func schedule(_ s: ServerHealth, at time: UInt64) {
        s.nextCheckMs = time
        timetable.checkDue(s)
    }

    /// Wakes the loop (after an admin change that re-enables checks).
    func poke() { wake.signal() }

    /// A worker saw a connect failure or a server abort (any thread). For Patroni-aware backends this
    /// means the cluster may be changing: ask every member now rather than at the next `inter`.
    func noteServerTrouble(backend b: Int, server: Int) {
        guard b < troubled.count, policies[b] != nil else { return }
        troubledServer[b].store(server + 1, ordering: .relaxed)
        if troubled[b].exchange(true, ordering: .relaxed) == false { poke() }
    }
}

/// A `perform` result crossing from the checker thread to the waiting caller (the semaphore orders
/// the two accesses).
private final class PerformBox<T>: @unchecked Sendable {
    var value: T?
    let done = DispatchSemaphore(value: 0)
}

extension HealthChecker {
    /// `set server B/S state ready|drain|maint` (and enable/disable): HAProxy's transitions and
    /// log lines. Checker thread.
    func setAdmin(_ s: ServerHealth, _ state: ServerAdminState, now: UInt64, logger: Logger) {
        let old = s.state.admin
        guard old != state else { return }
        let wasUsable = s.state.usable
        let name = "\(s.backendName)/\(s.name)"
        let prefix = s.isBackup ? "Backup Server" : "Server"
        s.state.admin = state
        switch state {
        case .maint:
            if wasUsable {
                s.noteTransition(now: now, up: false)
                // Entering maintenance counts as going DOWN for shutdown-sessions (HAProxy §7).
                if s.config.shutdownSessionsOnDown { s.cutSessions(reason: "D") }
                let sessions = engine.backends[s.backend].serverSessions[s.server].value
                logger.event(.alert, "\(prefix) \(name) is going DOWN for maintenance. \(leftText(s.backend, "left"))"
                    + " \(sessions) sessions active, 0 requeued, 0 remaining in queue.")
            } else {
                logger.event(.notice, "\(prefix) \(name) was DOWN and now enters maintenance.")
            }
        case .ready, .drain:
            if old == .maint {
                // Leaving maintenance: UP at once with health = rise, checked right away (HAProxy §3.2).
                s.state.force(running: true, health: s.state.rise)
                s.noteTransition(now: now, up: true)
                schedule(s, at: now)
                logger.event(.notice, "\(prefix) \(name) is UP/READY (leaving forced maintenance).")
            }
            if state == .drain {
                logger.event(.notice, "\(prefix) \(name) enters drain state.")
            } else if old == .drain {
                logger.event(.notice, "\(prefix) \(name) is UP (leaving forced drain).")
            }
        }
        publishTable()
    }

    /// `clear counters all`: the check failure and DOWN transition counts start again. Checker thread.
    func clearServerCounters() {
        for list in servers {
            for h in list {
                h.checkFailures = 0
                h.downTransitions = 0
            }
        }
    }
}

extension HealthChecker: LoopTurnHandler {
    func nextTimeoutMs(now: UInt64) -> Int32 {
        var next = timetable.earliest ?? UInt64.max
        for (b, d) in discovery.enumerated() where policies[b]?.discover == true {
            next = min(next, d.probe?.nextDeadline ?? d.nextMs)
        }
        if statusDirty.contains(true) { next = min(next, lastStatusPublishMs + Self.statusPublishIntervalMs) }
        if next == UInt64.max { return 1000 }
        return next <= now ? 0 : Int32(min(next - now, 1000))
    }

    /// After the turn's socket events and jobs: trouble reports, due checks and timeouts, then one
    /// table and one status publish for everything that changed.
    func turnEnded(now: UInt64) {
        takeTroubleReports(now: now)
        runTimetable(now: now)
        if tableDirty { publishTable() }
        publishStatus(now: now, force: tableDirty || statusUrgent)
        tableDirty = false
        statusUrgent = false
    }
}

/// Drains the workers' wake-ups; the reports themselves are atomics read at the end of the turn.
private final class WakeHandler: EventHandler {
    private let fd: Int32
    init(wake: borrowing EventFD) { fd = wake.fd }
    override func handle(events: UInt32, tag _: UInt32) { _ = cepoll_eventfd_drain(fd) }
}


/// A job handed to the checker thread by a caller that waits for it.
private struct UncheckedJob<T>: @unchecked Sendable {
    let body: () -> T
    init(_ body: @escaping () -> T) { self.body = body }
}
