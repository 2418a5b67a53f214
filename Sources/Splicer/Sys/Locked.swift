/// A value behind a `PThreadLock`, for state a few threads share off the relay path (tests share
/// results this way). Not the standard library's `Mutex`: ThreadSanitizer cannot see its contended
/// path on this toolchain and reports races that are not there, and CI fails on any report.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = PThreadLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try lock.withLock { try body(&value) }
    }
}
