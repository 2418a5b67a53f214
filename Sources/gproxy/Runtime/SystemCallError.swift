import Splicer

/// A failed system call of an admin or demo listener, with what was being done (e.g. "bind
/// 127.0.0.1:7000"), so start-up errors say which socket failed. Wraps Splicer's `Errno`.
struct SystemCallError: Error, CustomStringConvertible, Equatable {
    var operation: String
    var errno: Errno

    init(_ operation: String, _ errno: Errno) {
        self.operation = operation
        self.errno = errno
    }

    init(_ operation: String, code: Int32) { self.init(operation, Errno(code)) }

    var description: String { "\(operation): \(errno) (errno \(errno.code))" }

    /// Runs a Splicer call, naming the operation if it fails.
    static func named<T>(_ operation: String, _ body: () throws(Errno) -> T) throws(SystemCallError) -> T {
        do { return try body() } catch { throw SystemCallError(operation, error) }
    }

    /// Throws when a `cepoll_*` result is a negated errno.
    @discardableResult
    static func check(_ result: Int32, _ operation: String) throws(SystemCallError) -> Int32 {
        if result < 0 { throw SystemCallError(operation, code: -result) }
        return result
    }
}
