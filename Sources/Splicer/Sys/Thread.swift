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
    /// `stackSize` 0 keeps the default; test fixtures with many idle threads ask for less.
    public static func detached(name: String, stackSize: Int = 0, _ body: @escaping @Sendable () -> Void) {
        _ = create(name: name, stackSize: stackSize, detached: true, body)
    }

    /// Starts a joinable thread; pass the result to `join` exactly once.
    @discardableResult
    public static func start(name: String, stackSize: Int = 0, _ body: @escaping @Sendable () -> Void) -> pthread_t {
        create(name: name, stackSize: stackSize, detached: false, body)
    }

    public static func join(_ tid: pthread_t) { pthread_join(tid, nil) }

    private static func create(name: String, stackSize: Int, detached: Bool, _ body: @escaping @Sendable () -> Void) -> pthread_t {
        var attr = pthread_attr_t()
        unsafe pthread_attr_init(&attr)
        defer { unsafe pthread_attr_destroy(&attr) }
        if detached { unsafe pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED)) }
        if stackSize > 0 { unsafe pthread_attr_setstacksize(&attr, stackSize) }
        var tid = pthread_t()
        let box = unsafe Unmanaged.passRetained(Box(name, body)).toOpaque()
        let rc = unsafe pthread_create(&tid, &attr, { raw in
            let box = unsafe Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            _ = unsafe cepoll_set_thread_name(box.name)
            box.body()
            return nil
        }, unsafe box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        return tid
    }
}
