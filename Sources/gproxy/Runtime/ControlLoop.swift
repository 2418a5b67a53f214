import Dispatch
import Glibc
import Splicer

/// The control side's thread (`gproxy-ctl`) and its `EventLoop`: the stats listeners, the runtime
/// sockets and the reload hand-over endpoint all live on it. Nothing on it is on the relay path.
final class ControlLoop: @unchecked Sendable {
    let loop: EventLoop
    private let lock = PThreadLock()
    private var thread: pthread_t?
    private var threadId: pthread_t?

    init() throws {
        loop = try EventLoop()
    }

    /// Starts the thread once; later calls do nothing.
    func start() {
        lock.withLock {
            guard thread == nil else { return }
            thread = NamedThread.start(name: "gproxy-ctl") { [self] in
                lock.withLock { threadId = pthread_self() }
                loop.run()
            }
        }
    }

    /// Stops the loop and waits for its thread.
    func stop() {
        let t: pthread_t? = lock.withLock {
            let t = thread
            thread = nil
            return t
        }
        guard let t else { return }
        loop.stop()
        NamedThread.join(t)
        lock.withLock { threadId = nil }
    }

    private var onLoopThread: Bool {
        lock.withLock { threadId.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    private var isRunning: Bool { lock.withLock { thread != nil } }

    /// Runs `body` on the loop's thread and waits for it; inline when the loop is not running yet
    /// (start-up) or when called from the loop itself.
    func sync<T>(_ body: @escaping () throws -> T) throws -> T {
        if !isRunning || onLoopThread { return try body() }
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        let job = UncheckedJob(body)
        loop.post {
            box.result = Result { try job.body() }
            done.signal()
        }
        done.wait()
        return try box.result!.get()
    }

    func sync(_ body: @escaping () -> Void) {
        try? sync { () throws -> Void in body() }
    }
}

/// Carries a result from the loop thread to the waiting caller (the semaphore orders the accesses).
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

/// A job handed to the loop thread by a caller that waits for it: it runs on one thread at a time.
private struct UncheckedJob<T>: @unchecked Sendable {
    let body: () throws -> T
    init(_ body: @escaping () throws -> T) { self.body = body }
}
