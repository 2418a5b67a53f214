import CEpoll
import Glibc
import Splicer

/// A listening socket on an `EventLoop` (stats, runtime socket): accepts until the backlog is empty
/// and hands each connection to `accepted`. When accept fails for lack of descriptors or memory it
/// looks again on a timer: the listener is edge-triggered, so the connections already waiting would
/// otherwise wait for the next one to arrive.
final class LoopListener: EventHandler {
    static let retryMs = 100

    let fd: Int32
    private let loop: EventLoop
    private let accepted: (Int32) -> Void
    private var token: LoopToken?
    private var retry: UInt64?

    init(fd: Int32, loop: EventLoop, accepted: @escaping (Int32) -> Void) {
        self.fd = fd
        self.loop = loop
        self.accepted = accepted
    }

    func register() throws(Errno) {
        token = try loop.register(fd, events: CEPOLL_EPOLLIN | CEPOLL_EPOLLET, self)
    }

    override func handle(events: UInt32, tag _: UInt32) { acceptAll() }

    func acceptAll() {
        while token != nil {
            let result = IOResult(descriptor: cepoll_accept4(fd, nil, nil))
            guard case .done(let c) = result else {
                if result == .interrupted || result == .failed(Errno(ECONNABORTED)) { continue }
                if result != .wouldBlock && retry == nil {
                    retry = loop.schedule(afterMs: Self.retryMs) { [self] in
                        retry = nil
                        acceptAll()
                    }
                }
                return
            }
            accepted(Int32(c))
        }
    }

    /// Stops accepting and closes the socket.
    func close() {
        if let retry { loop.cancel(timer: retry) }
        retry = nil
        if let token { loop.deregister(fd, token) }
        token = nil
        _ = cepoll_close(fd)
    }
}
