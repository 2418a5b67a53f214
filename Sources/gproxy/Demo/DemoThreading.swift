// Threading primitives for the simulated cluster: a pthread mutex, a wait group and a thread launcher.
//
// The simulator runs one blocking thread per listener and per connection (it is a test fixture and a
// demo, not the proxy's hot path), so all it needs is a lock, a way to start and join threads, and a
// way to wait until every detached connection thread has finished. Stdlib `Synchronization.Mutex` is
// deliberately not used: on Swift 6.3.1 Linux its contended path is invisible to TSan, which then
// reports false races (shared/reference/swift-idioms.md §2b).

#if canImport(Glibc)
import Glibc
#endif

/// A heap-allocated `pthread_mutex_t` (NIOLock style), which TSan understands.
final class DemoLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the mutex held.
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// Counts running threads and lets `stop()` wait until all of them have ended.
///
/// Connection threads are detached (a finished joinable thread keeps its stack until joined, which
/// would leak in a long demo), so this counter is how teardown knows they are gone.
final class DemoWaitGroup: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private var count = 0

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    func enter() {
        pthread_mutex_lock(mutex)
        count += 1
        pthread_mutex_unlock(mutex)
    }

    func leave() {
        pthread_mutex_lock(mutex)
        count -= 1
        if count == 0 { pthread_cond_broadcast(cond) }
        pthread_mutex_unlock(mutex)
    }

    /// Waits until the count drops to zero or `timeoutMs` passes; returns true when it reached zero.
    @discardableResult
    func wait(timeoutMs: Int) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let nanos = Int(deadline.tv_nsec) + (timeoutMs % 1000) * 1_000_000
        deadline.tv_sec += timeoutMs / 1000 + nanos / 1_000_000_000
        deadline.tv_nsec = nanos % 1_000_000_000
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while count > 0 {
            if pthread_cond_timedwait(cond, mutex, &deadline) == ETIMEDOUT { return count == 0 }
        }
        return true
    }
}

/// Carries a thread body through `pthread_create`'s C start routine, which cannot capture context.
private final class DemoThreadBody {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// A started pthread; joinable unless it was spawned detached.
final class DemoThread: @unchecked Sendable {
    private let tid: pthread_t
    private let joinLock = DemoLock()
    private var joined = false

    private init(tid: pthread_t) { self.tid = tid }

    /// Starts `body` on a joinable thread. Call `join()` exactly as teardown requires.
    static func spawn(_ body: @escaping @Sendable () -> Void) -> DemoThread {
        DemoThread(tid: start(body, detached: false))
    }

    /// Starts `body` on a detached thread (pair it with a `DemoWaitGroup` to know when it ends).
    static func spawnDetached(_ body: @escaping @Sendable () -> Void) {
        _ = start(body, detached: true)
    }

    /// Waits for the thread to end. Safe to call more than once and from several threads.
    func join() {
        joinLock.withLock {
            guard !joined else { return }
            joined = true
            pthread_join(tid, nil)
        }
    }

    private static func start(_ body: @escaping @Sendable () -> Void, detached: Bool) -> pthread_t {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        if detached { pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED)) }
        // Small stacks: a demo cluster runs dozens of mostly idle threads.
        pthread_attr_setstacksize(&attr, 256 * 1024)
        let box = Unmanaged.passRetained(DemoThreadBody(body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, &attr, { raw in
            let body = Unmanaged<DemoThreadBody>.fromOpaque(raw!).takeRetainedValue()
            body.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        return tid
    }
}

/// Sleeps for `ms` milliseconds in slices, returning early (false) once `cancelled()` is true.
func demoSleep(ms: Int, cancelled: () -> Bool) -> Bool {
    var left = ms
    while left > 0 {
        if cancelled() { return false }
        let slice = min(left, 10)
        usleep(UInt32(slice * 1000))
        left -= slice
    }
    return !cancelled()
}
