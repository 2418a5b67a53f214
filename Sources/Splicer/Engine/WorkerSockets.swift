import CEpoll

/// One side of one session slot of a worker, as the worker's `EventLoop` sees it: the handler its
/// client or server socket is registered with. Two per slot, made when the slot pool grows and
/// reused by every session in that slot, so a connection allocates nothing.
@safe final class SessionSocket: EventHandler {
    /// SAFETY: the worker makes these objects and runs the only loop that calls them; the loop
    /// runs inside `Worker.run()`, so the worker is alive whenever `handle` is called. Not
    /// `unowned`: that would be a reference-count check and increment per event.
    unowned(unsafe) let worker: Worker
    let slot: Int32
    let session: Session
    let isClient: Bool
    /// The socket's current registration (`.none` when it has none).
    var token = LoopToken.none

    init(worker: Worker, slot: Int32, session: Session, isClient: Bool) {
        unsafe self.worker = worker
        self.slot = slot
        self.session = session
        self.isClient = isClient
    }

    func handle(events: UInt32) {
        // The loop already dropped events of an earlier registration (generation check).
        guard session.phase != .free else { return }
        if isClient {
            unsafe worker.clientEvent(slot, session, events)
        } else {
            unsafe worker.serverEvent(slot, session, events)
        }
    }
}

/// The handler a worker's listening socket is registered with (one per listener, reused across
/// pause and resume).
@safe final class ListenerSocket: EventHandler {
    /// SAFETY: as for `SessionSocket.worker`.
    unowned(unsafe) let worker: Worker
    let index: Int

    init(worker: Worker, index: Int) {
        unsafe self.worker = worker
        self.index = index
    }

    func handle(events: UInt32) { unsafe worker.accept(listener: index) }
}
