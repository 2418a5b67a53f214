/// Points on a worker's accept path that a test can watch (and stall, to force one interleaving of
/// workers contending for the last process or frontend slot). Reported to `Engine.acceptProbe`,
/// which is nil outside tests: one load of an optional per accept attempt, never per relayed byte.
enum AcceptCheckpoint: Sendable, Equatable {
    /// The worker is about to reserve a slot for a connection on one of its listeners.
    case reserving(worker: Int)
    /// It holds a reservation and is about to call accept.
    case reserved(worker: Int)
    /// A limit was full: the worker is about to ask to be woken when it frees.
    case full(worker: Int)
    /// Every slot was taken: it asked to be woken when one frees, and goes back to waiting.
    case waitingForRoom(worker: Int)
}
