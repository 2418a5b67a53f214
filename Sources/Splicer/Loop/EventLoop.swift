import CEpoll
import Glibc

/// Reacts to the readiness of a descriptor registered with an `EventLoop`.
public protocol EventHandler: AnyObject {
    /// `events`: the epoll bits (CEPOLL_EPOLLIN, ...). Called on the loop's thread.
    func handle(events: UInt32)
}

/// The owner of a loop that works in turns (the health checker): it names its own next deadline
/// and acts once per turn, after the turn's events, timers and posted jobs.
public protocol LoopTurnHandler: AnyObject {
    /// Milliseconds until the owner's next deadline; -1 for none.
    func nextTimeoutMs(now: UInt64) -> Int32
    func turnEnded(now: UInt64)
}

/// A registration: the slot and the generation it had, so an event queued for a descriptor that
/// was closed (and whose slot was reused) in the same turn is recognised as stale and dropped.
public struct LoopToken: Equatable, Sendable {
    let slot: UInt32
    let generation: UInt32
    var raw: UInt64 { UInt64(generation) << 32 | UInt64(slot) }
}

/// The event loop of the control side: an epoll set, an event buffer, an eventfd inbox for work
/// posted from other threads, and one-shot timers. Stats HTTP, the runtime socket and the reload
/// hand-over all run on one of these, on one thread; a handler must never block for long.
///
/// Everything but `post` and `stop` must be called on the loop's thread (or before `run`).
@safe public final class EventLoop: @unchecked Sendable {
    private let epfd: Int32
    private let wake: EventFD
    private var handlers: [(generation: UInt32, handler: (any EventHandler)?)] = []
    private var freeSlots: [UInt32] = []
    private var timers = TimerHeap()
    private let inboxLock = PThreadLock()
    private var inbox: [() -> Void] = []
    private var drained: [() -> Void] = []
    private var running = false
    private var stopRequested = false
    private static let wakeToken = UInt64.max
    /// Set before `run` (loop thread only).
    public weak var turnHandler: (any LoopTurnHandler)?

    public init() throws(Errno) {
        epfd = try Errno.check(cepoll_create())
        do {
            wake = try EventFD()
        } catch {
            _ = cepoll_close(epfd)
            throw error
        }
        _ = try Errno.check(cepoll_ctl(epfd, CEPOLL_CTL_ADD, wake.fd, CEPOLL_EPOLLIN, Self.wakeToken))
    }

    deinit { _ = cepoll_close(epfd) }

    // MARK: - Descriptors

    /// Adds `fd` with `events` (add CEPOLL_EPOLLET for edge-triggered). The loop keeps `handler`
    /// alive until `deregister`.
    public func register(_ fd: Int32, events: UInt32, _ handler: any EventHandler) throws(Errno) -> LoopToken {
        let slot: UInt32
        if let free = freeSlots.popLast() {
            slot = free
            handlers[Int(slot)].handler = handler
        } else {
            slot = UInt32(handlers.count)
            handlers.append((0, handler))
        }
        let token = LoopToken(slot: slot, generation: handlers[Int(slot)].generation)
        do {
            _ = try Errno.check(cepoll_ctl(epfd, CEPOLL_CTL_ADD, fd, events, token.raw))
        } catch {
            release(token)
            throw error
        }
        return token
    }

    /// Changes the events watched for `fd`.
    public func modify(_ fd: Int32, events: UInt32, _ token: LoopToken) {
        _ = cepoll_ctl(epfd, CEPOLL_CTL_MOD, fd, events, token.raw)
    }

    /// Removes `fd` from the set (before the caller closes it) and forgets its handler.
    public func deregister(_ fd: Int32, _ token: LoopToken) {
        _ = cepoll_ctl(epfd, CEPOLL_CTL_DEL, fd, 0, 0)
        release(token)
    }

    private func release(_ token: LoopToken) {
        let i = Int(token.slot)
        guard i < handlers.count, handlers[i].generation == token.generation, handlers[i].handler != nil else { return }
        handlers[i].handler = nil
        handlers[i].generation &+= 1
        freeSlots.append(token.slot)
    }

    // MARK: - Timers

    /// Runs `job` on the loop once `ms` milliseconds have passed. Returns an id for `cancel`.
    @discardableResult
    public func schedule(afterMs ms: Int, _ job: @escaping () -> Void) -> UInt64 {
        timers.add(deadline: Clock.nowMs() + UInt64(max(0, ms)), job)
    }

    public func cancel(timer id: UInt64) { timers.cancel(id) }

    // MARK: - Other threads

    /// Runs `job` on the loop's thread at its next turn (any thread).
    public func post(_ job: @escaping @Sendable () -> Void) {
        inboxLock.withLock { inbox.append(job) }
        wake.signal()
    }

    /// Makes `run` return after the current turn (any thread).
    public func stop() {
        inboxLock.withLock { stopRequested = true }
        wake.signal()
    }

    // MARK: - Running

    /// Waits for events, timers and posted work until `stop()`.
    public func run() {
        let capacity = 128
        var events = [UInt32](repeating: 0, count: capacity)
        var tokens = [UInt64](repeating: 0, count: capacity)
        running = true
        while running {
            let before = Clock.nowMs()
            var timeout = timers.timeout(now: before)
            if let t = turnHandler?.nextTimeoutMs(now: before), t >= 0 { timeout = timeout < 0 ? t : min(timeout, t) }
            let n = unsafe cepoll_wait(epfd, &events, &tokens, Int32(capacity), timeout)
            for i in 0..<max(0, Int(n)) {
                if tokens[i] == Self.wakeToken {
                    wake.drain()
                    runInbox()
                    continue
                }
                let slot = Int(UInt32(truncatingIfNeeded: tokens[i]))
                let generation = UInt32(truncatingIfNeeded: tokens[i] >> 32)
                guard slot < handlers.count, handlers[slot].generation == generation,
                      let h = handlers[slot].handler else { continue }
                h.handle(events: events[i])
            }
            // One at a time: a job may schedule or cancel timers.
            let now = Clock.nowMs()
            while let job = timers.popExpired(now: now) { job() }
            turnHandler?.turnEnded(now: Clock.nowMs())
            if inboxLock.withLock({ stopRequested }) { running = false }
        }
        runInbox()
    }

    /// Runs what was posted and not yet run (after `run` returned, on the thread that ran it).
    public func runPosted() { runInbox() }

    private func runInbox() {
        inboxLock.withLock { swap(&inbox, &drained) }
        for job in drained { job() }
        drained.removeAll(keepingCapacity: true)
    }
}

/// One-shot timers ordered by deadline; cancelled ones are skipped when they come due.
struct TimerHeap {
    private struct Entry: Comparable {
        var deadline: UInt64
        var id: UInt64
        static func < (a: Entry, b: Entry) -> Bool { a.deadline < b.deadline }
    }

    private var heap = MinHeap<Entry>()
    private var jobs: [UInt64: () -> Void] = [:]
    private var nextId: UInt64 = 1

    mutating func add(deadline: UInt64, _ job: @escaping () -> Void) -> UInt64 {
        let id = nextId
        nextId += 1
        jobs[id] = job
        heap.push(Entry(deadline: deadline, id: id))
        return id
    }

    mutating func cancel(_ id: UInt64) { jobs[id] = nil }

    /// Milliseconds until the earliest live deadline, -1 for none.
    mutating func timeout(now: UInt64) -> Int32 {
        while let top = heap.top, jobs[top.id] == nil { _ = heap.popIf { _ in true } }
        guard let top = heap.top else { return -1 }
        return top.deadline <= now ? 0 : Int32(min(top.deadline - now, 60_000))
    }

    /// The next due job (removed), skipping cancelled ones; nil when none is due.
    mutating func popExpired(now: UInt64) -> (() -> Void)? {
        while let top = heap.popIf({ $0.deadline <= now }) {
            if let job = jobs.removeValue(forKey: top.id) { return job }
        }
        return nil
    }
}
