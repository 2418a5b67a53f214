/// Each worker's listening fds (-1 once closed), behind a pthread mutex: ThreadSanitizer sees it,
/// where stdlib `Mutex` shows every access as a race. Workers change it only when they close or
/// reopen listeners (never in the data path); a reload hand-over reads it to duplicate the fds.
final class ListenerTable: @unchecked Sendable {
    private let lock = PThreadLock()
    private var fds: [[Int32]] = []

    func withLock<T>(_ body: (inout [[Int32]]) -> T) -> T { lock.withLock { body(&fds) } }
}
