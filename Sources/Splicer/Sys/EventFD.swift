import CEpoll

/// A worker's wake-up line: other threads signal it, the worker's epoll loop drains it.
struct EventFD: ~Copyable {
    let fd: Int32

    init() throws(Errno) { fd = try Errno.check(cepoll_eventfd()) }
    deinit { _ = cepoll_close(fd) }

    func signal() { _ = cepoll_eventfd_signal(fd) }
    func drain() { _ = cepoll_eventfd_drain(fd) }
}
