/// Typed messages from other threads to the owner of an `EventLoop`, delivered through the loop's
/// eventfd: `post` appends under a short lock and wakes the loop, which calls its turn handler's
/// `woken()`, which drains the box.
///
/// Chosen over `EventLoop.post` (a closure per message, so an allocation per post) for messages
/// that can come once per session: a relay worker gets a queue grant per queued session and an
/// accept retry per session end at a full limit. The array's capacity is reused between drains.
@safe public final class LoopMailbox<Message>: @unchecked Sendable {
    private let lock = PThreadLock()
    private var pending: [Message] = []
    private let loop: EventLoop

    public init(loop: EventLoop) { self.loop = loop }

    /// Any thread.
    public func post(_ m: Message) {
        lock.withLock { pending.append(m) }
        loop.wake()
    }

    /// Moves every pending message into `into` (which the owner empties and reuses). Loop thread.
    public func drain(into: inout [Message]) {
        lock.withLock { swap(&pending, &into) }
    }
}
