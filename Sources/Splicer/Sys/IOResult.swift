import Glibc

/// What a CEpoll I/O wrapper returned (a count or a descriptor, or -errno), classified once: the
/// one way callers read the result of a read, write, send, splice or accept — no raw `-EAGAIN`
/// comparisons at call sites.
@frozen public enum IOResult: Equatable, Sendable {
    /// Bytes moved (> 0), or the descriptor accept returned.
    case done(Int)
    /// 0 from a read or a splice out of a socket: the peer closed its side.
    case end
    /// EAGAIN: nothing now; edge-triggered epoll says when.
    case wouldBlock
    /// EINTR: nothing happened; try again.
    case interrupted
    case failed(Errno)

    /// A byte count: 0 is the end of the stream.
    @inline(__always)
    public init<T: BinaryInteger>(_ result: T) {
        if result > 0 {
            self = .done(Int(result))
        } else if result == 0 {
            self = .end
        } else {
            self = IOResult(errno: Int32(truncatingIfNeeded: -Int(result)))
        }
    }

    /// A descriptor (accept): 0 is a valid one.
    @inline(__always)
    public init(descriptor result: Int32) {
        self = result >= 0 ? .done(Int(result)) : IOResult(errno: -result)
    }

    @inline(__always)
    init(errno code: Int32) {
        switch code {
        case EAGAIN: self = .wouldBlock
        case EINTR: self = .interrupted
        default: self = .failed(Errno(code))
        }
    }
}
