/// Messages other threads send a worker through its `LoopMailbox`. Rare (queue grants, control);
/// the hot path never posts.
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
