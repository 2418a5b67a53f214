import CEpoll

// A pooled `Session` is the handler of both its sockets (Session.swift; the registration's tag says
// which): no handler object per socket, so an idle connection costs only its `Session`.

/// The handler a worker's listening socket is registered with (one per listener, reused across
/// pause and resume).
@safe final class ListenerSocket: EventHandler {
    /// SAFETY: as for `Session.worker`.
    unowned(unsafe) let worker: Worker
    let index: Int

    init(worker: Worker, index: Int) {
        unsafe self.worker = worker
        self.index = index
    }

    override func handle(events: UInt32, tag _: UInt32) { unsafe worker.accept(listener: index) }
}
