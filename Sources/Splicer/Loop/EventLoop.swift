import CEpoll
import Glibc
import Synchronization

/// Reacts to the readiness of a descriptor registered with an `EventLoop`.
///
/// A base class, not a protocol: the loop's table then holds an 8-byte reference per registration
/// instead of a 16-byte existential, which a relay worker pays twice per open connection.
open class EventHandler {
    public init() {}

    /// `events`: the epoll bits (CEPOLL_EPOLLIN, ...); `tag`: what the registration was given (lets
    /// one object own several descriptors: a relay session is the handler of both its sockets, so
    /// an idle connection costs no handler object of its own). Called on the loop's thread.
    open func handle(events: UInt32, tag: UInt32) {}
}

/// The owner of a loop that works in turns (the health checker, a relay worker): it names its own
/// next deadline and acts once per turn, after the turn's events, timers and posted jobs.
public protocol LoopTurnHandler: AnyObject {
    /// Before the turn's wait (a worker loads a newly published routing table here).
    func turnStarting()
    /// Milliseconds until the owner's next deadline; -1 for none.
    func nextTimeoutMs(now: UInt64) -> Int32
    func turnEnded(now: UInt64)
    /// The loop's eventfd fired (after the posted jobs ran): drain the owner's `LoopMailbox`.
    func woken()
}

extension LoopTurnHandler {
    public func turnStarting() {}
    public func woken() {}
}

/// A registration: the slot and the generation it had, so an event queued for a descriptor that
/// was closed (and whose slot was reused) in the same turn is recognised as stale and dropped.
/// The one token encoding of every loop: workers, the checker and the control side.
public struct LoopToken: Equatable, Sendable {
    let slot: UInt32
    let generation: UInt32
    var raw: UInt64 { UInt64(generation) << 32 | UInt64(slot) }
    /// No registration; `forget`/`deregister` ignore it.
    public static let none = LoopToken(slot: UInt32.max, generation: 0)
}

/// An epoll set, an event buffer, an eventfd inbox for work posted from other threads, and
/// one-shot timers. The relay workers, the health checker and the control side (stats HTTP, the
/// runtime socket, the reload hand-over) each run on one of these, on one thread; a handler must
/// never block for long.
///
/// Per event the loop does one generation check and one call to the registration's handler;
/// nothing allocates per event or per turn (the event buffers are allocated once per `run`).
///
/// Everything but `post`, `wake` and `stop` must be called on the loop's thread (or before `run`).
@safe public final class EventLoop: @unchecked Sendable {
    private let epfd: Int32
    private let wakeLine: EventFD
    private let eventCapacity: Int
    private var handlers: [(generation: UInt32, tag: UInt32, handler: EventHandler?)] = []
    private var freeSlots: [UInt32] = []
    private var timers = TimerHeap()
    private let inboxLock = PThreadLock()
    private var inbox: [() -> Void] = []
    private var drained: [() -> Void] = []
    /// Set when `inbox` may hold jobs: a relay worker is woken for its mailbox, never for jobs,
    /// and those wake-ups skip the inbox lock.
    private let jobsPosted = Atomic<Bool>(false)
    private var running = false
    /// An atomic, not under `inboxLock`: it is read once per turn, and a relay worker's turns
    /// must not take a lock.
    private let stopRequested = Atomic<Bool>(false)
    private static let wakeToken = UInt64.max
    /// Set before `run` (loop thread only).
    public weak var turnHandler: (any LoopTurnHandler)?
    /// The time read just after this turn's wait (ms, `Clock`): handlers use it instead of reading
    /// the clock per event.
    public private(set) var now: UInt64

    /// `eventCapacity`: the most events one wait returns (a busy relay worker wants more than the
    /// control side).
    public init(eventCapacity: Int = 128) throws(Errno) {
        self.eventCapacity = max(1, eventCapacity)
        now = Clock.nowMs()
        epfd = try Errno.check(cepoll_create())
        do {
            wakeLine = try EventFD()
        } catch {
            _ = cepoll_close(epfd)
            throw error
        }
        _ = try Errno.check(cepoll_ctl(epfd, CEPOLL_CTL_ADD, wakeLine.fd, CEPOLL_EPOLLIN, Self.wakeToken))
    }

    deinit { _ = cepoll_close(epfd) }

    // MARK: - Descriptors

    /// Adds `fd` with `events` (add CEPOLL_EPOLLET for edge-triggered). The loop keeps `handler`
    /// alive until `deregister` or `forget`. Allocates nothing once the table has grown to the
    /// number of descriptors registered at once.
    public func register(_ fd: Int32, events: UInt32, _ handler: EventHandler, tag: UInt32 = 0) throws(Errno) -> LoopToken {
        let slot: UInt32
        if let free = freeSlots.popLast() {
            slot = free
            handlers[Int(slot)].handler = handler
            handlers[Int(slot)].tag = tag
        } else {
            slot = UInt32(handlers.count)
            handlers.append((0, tag, handler))
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

    /// Removes `fd` from the set and forgets its handler. Needed before closing a descriptor that
    /// another open file description may share (a listening socket handed over on reload: the
    /// epoll registration lives as long as any duplicate, so a bare close would keep it firing).
    public func deregister(_ fd: Int32, _ token: LoopToken) {
        guard token != .none else { return }
        _ = cepoll_ctl(epfd, CEPOLL_CTL_DEL, fd, 0, 0)
        release(token)
    }

    /// Forgets `token`'s handler without the EPOLL_CTL_DEL system call, for a caller about to
    /// close the descriptor (its only reference): the close removes it from the set. A relay
    /// worker closes two sockets per session and must not pay a syscall more for each. Events
    /// already returned by this turn's wait for it are dropped (the generation moved on).
    public func forget(_ token: LoopToken) {
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

    /// Runs `job` on the loop's thread at its next turn (any thread). One allocation per post:
    /// for rare control work; typed, frequent messages go through a `LoopMailbox`.
    public func post(_ job: @escaping @Sendable () -> Void) {
        inboxLock.withLock {
            inbox.append(job)
            jobsPosted.store(true, ordering: .releasing)
        }
        wakeLine.signal()
    }

    /// Wakes the loop, which then calls its turn handler's `woken()` (any thread).
    public func wake() { wakeLine.signal() }

    /// Makes `run` return after the current turn (any thread).
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        wakeLine.signal()
    }

    // MARK: - Running

    /// Waits for events, timers and posted work until `stop()`.
    public func run() {
        var events = [UInt32](repeating: 0, count: eventCapacity)
        var tokens = [UInt64](repeating: 0, count: eventCapacity)
        running = true
        while running {
            // One weak load per turn.
            let owner = turnHandler
            owner?.turnStarting()
            let before = Clock.nowMs()
            var timeout = timers.timeout(now: before)
            if let t = owner?.nextTimeoutMs(now: before), t >= 0 { timeout = timeout < 0 ? t : min(timeout, t) }
            let n = unsafe cepoll_wait(epfd, &events, &tokens, Int32(eventCapacity), timeout)
            now = Clock.nowMs()
            for i in 0..<max(0, Int(n)) {
                let token = tokens[i]
                if token == Self.wakeToken {
                    wakeLine.drain()
                    runInbox()
                    owner?.woken()
                    continue
                }
                let slot = Int(UInt32(truncatingIfNeeded: token))
                let generation = UInt32(truncatingIfNeeded: token >> 32)
                guard slot < handlers.count, handlers[slot].generation == generation,
                      let h = handlers[slot].handler else { continue }
                h.handle(events: events[i], tag: handlers[slot].tag)
            }
            // One at a time: a job may schedule or cancel timers.
            if !timers.isEmpty {
                let t = Clock.nowMs()
                while let job = timers.popExpired(now: t) { job() }
            }
            owner?.turnEnded(now: now)
            if stopRequested.load(ordering: .acquiring) { running = false }
        }
        runInbox()
    }

    /// Runs what was posted and not yet run (after `run` returned, on the thread that ran it).
    public func runPosted() { runInbox() }

    private func runInbox() {
        // A job posted after the exchange is either swapped in below or leaves the flag set for
        // the wake-up its `post` signals.
        guard jobsPosted.exchange(false, ordering: .acquiringAndReleasing) else { return }
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

    var isEmpty: Bool { heap.count == 0 }

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
