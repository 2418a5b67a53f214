/// Messages other threads send a worker. Rare (queue grants, control); the hot path never posts.
enum WorkerMessage {
    /// A queued session was given a server slot.
    case grant(QueueTicket)
    /// Stop accepting (SIGTTOU) / accept again (SIGTTIN).
    case pauseListeners
    case resumeListeners
    /// Close listeners, finish when no session is left (SIGUSR1).
    case softStop
    /// Close everything now.
    case stop
    /// A process/frontend limit freed a slot: try accepting again.
    case retryAccept
    /// A new routing table was published: reload it now (shutdown-sessions must act promptly).
    case tableChanged
}

/// A worker's mailbox: a short lock around an array swap, then an eventfd write to wake it.
final class WorkerInbox: @unchecked Sendable {
    private let lock = PThreadLock()
    private var pending: [WorkerMessage] = []
    let wake: EventFD

    init() throws(Errno) { wake = try EventFD() }

    func post(_ m: WorkerMessage) {
        lock.withLock { pending.append(m) }
        wake.signal()
    }

    /// Moves every pending message into `into` (which the worker reuses between calls).
    func drain(into: inout [WorkerMessage]) {
        wake.drain()
        lock.withLock { swap(&pending, &into) }
    }
}
