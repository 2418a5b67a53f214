import CEpoll
import Glibc

/// Starts a named POSIX thread running `body` (Foundation's Thread is kept off the engine).
public enum NamedThread {
    private final class Box: @unchecked Sendable {
        let name: String
        let body: () -> Void
        init(_ name: String, _ body: @escaping () -> Void) { self.name = name; self.body = body }
    }

    /// Starts a thread nobody will join (it releases its resources itself when it ends).
    public static func detached(name: String, _ body: @escaping @Sendable () -> Void) {
        pthread_detach(start(name: name, body))
    }

    @discardableResult
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
        var tid = pthread_t()
        let box = unsafe Unmanaged.passRetained(Box(name, body)).toOpaque()
        let rc = unsafe pthread_create(&tid, nil, { raw in
            let box = unsafe Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            _ = unsafe cepoll_set_thread_name(box.name)
            box.body()
            return nil
        }, unsafe box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        return tid
    }

    public static func join(_ tid: pthread_t) { pthread_join(tid, nil) }
}
