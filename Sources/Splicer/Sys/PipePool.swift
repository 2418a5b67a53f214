import CEpoll
import Glibc

/// A kernel pipe used as the splice buffer of one relay direction.
struct Pipe {
    var readEnd: Int32
    var writeEnd: Int32
    /// What this pipe holds: sizes differ when the kernel refuses a resize (an unprivileged user
    /// past fs.pipe-user-pages-soft).
    var bytes: Int
    static let none = Pipe(readEnd: -1, writeEnd: -1, bytes: 0)
    var isOpen: Bool { readEnd >= 0 }
}

/// A worker's free pipes. A session takes a pipe only while bytes are in flight and gives it back
/// as soon as it is empty, so idle sessions hold none (no fds, no kernel pages). A pipe that still
/// holds data is never reused: it is closed.
struct PipePool {
    private var free: [Pipe] = []
    let capacity: Int
    private let requestedSize: Int
    private(set) var inUse = 0

    init(capacity: Int, pipeSize: Int) {
        self.capacity = capacity
        // Never below the kernel's 64 KiB default: a pipe must take a whole copy buffer (see pump).
        requestedSize = pipeSize == 0 ? 0 : max(pipeSize, 65536)
        free.reserveCapacity(capacity)
    }

    /// A pipe holding at least `minimum` bytes, or nil when none can be made (out of fds, or the
    /// kernel shrank a new pipe below `minimum`: an unprivileged user past fs.pipe-user-pages-soft
    /// gets 8 KiB pipes).
    mutating func take(minimum: Int = 1) -> Pipe? {
        if let i = free.lastIndex(where: { $0.bytes >= minimum }) {
            inUse += 1
            return free.remove(at: i)
        }
        var fds: [Int32] = [0, 0]
        if unsafe cepoll_pipe2(&fds) < 0 { return nil }
        if requestedSize > 0 { _ = cepoll_set_pipe_size(fds[1], Int32(requestedSize)) }
        let pipe = Pipe(readEnd: fds[0], writeEnd: fds[1], bytes: max(0, Int(cepoll_get_pipe_size(fds[1]))))
        guard pipe.bytes >= minimum, pipe.bytes > 0 else {
            Self.destroy(pipe)
            return nil
        }
        inUse += 1
        return pipe
    }

    /// Returns an empty pipe for reuse.
    mutating func giveBack(_ p: Pipe) {
        inUse -= 1
        if free.count < capacity { free.append(p) } else { Self.destroy(p) }
    }

    /// Closes a pipe that may still hold data.
    mutating func discard(_ p: Pipe) {
        inUse -= 1
        Self.destroy(p)
    }

    mutating func closeAll() {
        for p in free { Self.destroy(p) }
        free.removeAll()
    }

    private static func destroy(_ p: Pipe) {
        _ = cepoll_close(p.readEnd)
        _ = cepoll_close(p.writeEnd)
    }
}
