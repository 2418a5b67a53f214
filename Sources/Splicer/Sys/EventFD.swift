import CEpoll

/// A loop's wake-up line: other threads signal it, the worker's epoll loop drains it.
public struct EventFD: ~Copyable {
    public let fd: Int32

    public init() throws(Errno) { fd = try Errno.check(cepoll_eventfd()) }
    deinit { _ = cepoll_close(fd) }

    public func signal() { _ = cepoll_eventfd_signal(fd) }
    public func drain() { _ = cepoll_eventfd_drain(fd) }
}
