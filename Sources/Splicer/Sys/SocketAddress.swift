import CEpoll
import Glibc

/// An IPv4 or IPv6 socket address held by value (a `sockaddr_storage` and its length).
public struct SocketAddress: Sendable, Equatable, CustomStringConvertible {
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    /// From an IP literal; nil when `ip` is not one.
    public init?(ip: String, port: UInt16) {
        let n = unsafe cepoll_make_addr(ip, Int32(port), &storage)
        if n < 0 { return nil }
        length = socklen_t(n)
    }

    init() {}

    public var family: Int32 { Int32(storage.ss_family) }

    /// Read and written in place: `sin_port` and `sin6_port` both sit at byte offset 2, in network
    /// order. (The relay reads it on every connect; formatting the address to get it cost an
    /// inet_ntop, a sprintf and a String.)
    public var port: UInt16 {
        get {
            guard family == AF_INET || family == AF_INET6 else { return 0 }
            return unsafe withUnsafeBytes(of: storage) { raw in unsafe UInt16(raw[2]) << 8 | UInt16(raw[3]) }
        }
        set {
            guard family == AF_INET || family == AF_INET6 else { return }
            unsafe withUnsafeMutableBytes(of: &storage) { raw in
                unsafe raw[2] = UInt8(newValue >> 8)
                unsafe raw[3] = UInt8(newValue & 0xFF)
            }
        }
    }

    public var ipAndPort: (ip: String, port: UInt16) {
        var buf = [CChar](repeating: 0, count: 64)
        var port: Int32 = 0
        var s = storage
        if unsafe cepoll_format_addr(&s, &buf, 64, &port) != 0 { return ("?", 0) }
        let ip = unsafe buf.withUnsafeBufferPointer { unsafe String(cString: $0.baseAddress!) }
        return (ip, UInt16(port))
    }

    /// `ip:port`, IPv6 in brackets (as HAProxy's logs and stats print it).
    public var description: String {
        let (ip, port) = ipAndPort
        return family == AF_INET6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    public static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        a.length == b.length && a.description == b.description
    }

    /// A cheap hash of the IP bytes, for `balance source`.
    var ipHash: UInt32 {
        var h: UInt32 = 2_166_136_261
        unsafe withUnsafeBytes(of: storage) { raw in
            let (start, count) = family == AF_INET6 ? (8, 16) : (4, 4)
            for i in start..<(start + count) { h = unsafe (h ^ UInt32(raw[i])) &* 16_777_619 }
        }
        return h
    }
}
