import CEpoll
import Glibc

/// Listening sockets received from the process being replaced (reload with `-sf`/`-st`), keyed by
/// the address they are bound to. The engine and the stats listeners take the ones matching their
/// binds instead of binding anew, so the kernel's accept queues survive the reload: connections
/// that arrive while the old process lets go are accepted by the new one, never reset.
/// Used on the main thread during start-up only.
public final class InheritedListeners: @unchecked Sendable {
    private var byAddress: [(address: SocketAddress, fd: Int32)] = []

    public init() {}

    /// Keeps `fd` if it is a listening socket with a local address; closes it otherwise.
    public func add(_ fd: Int32) {
        var listening: Int32 = 0
        guard unsafe cepoll_getsockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening) == 0, listening == 1,
              let address = Socket.localAddress(of: fd) else {
            Socket.close(fd)
            return
        }
        byAddress.append((address, fd))
    }

    public var count: Int { byAddress.count }

    /// One inherited socket bound to exactly `address`, now owned by the caller.
    public func take(_ address: SocketAddress) -> Int32? {
        guard address.port != 0, let i = byAddress.firstIndex(where: { $0.address == address }) else { return nil }
        return byAddress.remove(at: i).fd
    }

    /// Closes what no bind of the new configuration took (a bind the reload removed: its queue ends
    /// when the old process closes its copy too).
    public func closeRest() {
        for l in byAddress { Socket.close(l.fd) }
        byAddress.removeAll()
    }
}
