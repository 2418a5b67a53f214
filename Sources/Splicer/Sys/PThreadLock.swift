import Glibc

/// A heap-allocated pthread mutex. Used only off the relay path (queues of a saturated backend,
/// worker inboxes). Chosen over stdlib `Mutex`, whose contended path TSan cannot see on 6.3.1.
public final class PThreadLock: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        m = .allocate(capacity: 1)
        m.initialize(to: pthread_mutex_t())
        pthread_mutex_init(m, nil)
    }

    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }

    @inline(__always)
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }
}
