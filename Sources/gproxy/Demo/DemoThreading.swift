// Threading helpers for the simulated cluster that Splicer does not have: a wait group and a
// cancellable sleep. Locks and threads are Splicer's `PThreadLock` and `NamedThread`.
//
// The simulator runs one blocking thread per listener and per connection (it is a test fixture and a
// demo, not the proxy's hot path); connection threads are detached, and the wait group is how
// teardown knows they have all ended.

#if canImport(Glibc)
import Glibc
#endif

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

/// Stack size of the simulator's threads: a demo cluster runs dozens of mostly idle threads.
let demoStackSize = 256 * 1024

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
