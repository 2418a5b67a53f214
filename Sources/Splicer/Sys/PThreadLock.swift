import Glibc

/// A heap-allocated pthread mutex. Used only off the relay path (queues of a saturated backend,
/// worker inboxes). Chosen over stdlib `Mutex`, whose contended path TSan cannot see on 6.3.1.
@safe public final class PThreadLock: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        unsafe m = .allocate(capacity: 1)
        unsafe m.initialize(to: pthread_mutex_t())
        unsafe pthread_mutex_init(m, nil)
    }

    deinit {
        unsafe pthread_mutex_destroy(m)
        unsafe m.deallocate()
    }

    @inline(__always)
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        unsafe pthread_mutex_lock(m)
        defer { unsafe pthread_mutex_unlock(m) }
        return try body()
    }
}
