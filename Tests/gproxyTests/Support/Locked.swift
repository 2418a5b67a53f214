import Splicer

/// A value behind a pthread mutex, for test threads that share results. Not the standard library's
/// `Mutex`: ThreadSanitizer cannot see its contended path on this toolchain and reports races
/// that are not there (shared/reference/swift-idioms.md), and CI fails on any report.
final class Locked<Value>: @unchecked Sendable {
    private let lock = PThreadLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try lock.withLock { try body(&value) }
    }
}
