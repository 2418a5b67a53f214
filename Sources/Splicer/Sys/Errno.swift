import CEpoll
import Glibc

/// A failed system call's errno. Thrown with typed throws so the error path allocates nothing.
public struct Errno: Error, Equatable, Sendable, CustomStringConvertible {
    public let code: Int32
    public init(_ code: Int32) { self.code = code }
    public var description: String { unsafe String(cString: strerror(code)) }

    /// Turns a CEpoll wrapper's result (value or -errno) into a value, or throws.
    @inline(__always)
    static func check<T: SignedInteger>(_ result: T) throws(Errno) -> T {
        if result < 0 { throw Errno(Int32(truncatingIfNeeded: -result)) }
        return result
    }
}
