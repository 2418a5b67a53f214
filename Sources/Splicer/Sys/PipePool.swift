import CEpoll
import Glibc
import Synchronization

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

/// Process-wide pipe counts shared by every worker's pool (HAProxy's `maxpipes`, and `show info`'s
/// PipesUsed / PipesFree). Relaxed atomics: a pool touches them only when it takes or returns a pipe.
public final class PipeGauge: Sendable {
    /// `maxpipes`: pipes in use at once, all workers together; 0 = no cap.
    public let limit: Int
    private let inUse = Atomic<Int>(0)
    private let pooled = Atomic<Int>(0)

    public init(limit: Int) { self.limit = max(0, limit) }

    /// Pipes holding (or about to hold) a session's bytes.
    public var used: Int { inUse.load(ordering: .relaxed) }
    /// Empty pipes kept in the workers' pools for reuse.
    public var free: Int { pooled.load(ordering: .relaxed) }

    /// Counts one more pipe in use; false (and nothing counted) when that would pass the cap.
    func reserve(pastLimit: Bool) -> Bool {
        let now = inUse.add(1, ordering: .relaxed).newValue
        if limit > 0, now > limit, !pastLimit {
            inUse.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func release() { inUse.subtract(1, ordering: .relaxed) }
    func pooled(_ delta: Int) { pooled.add(delta, ordering: .relaxed) }
}

/// A worker's free pipes. A session takes a pipe only while bytes are in flight and gives it back
/// as soon as it is empty, so idle sessions hold none (no fds, no kernel pages). A pipe that still
/// holds data is never reused: it is closed. Every worker's pool counts into one `PipeGauge`, which
/// caps the pipes in use process-wide at `maxpipes`.
struct PipePool {
    private var free: [Pipe] = []
    let capacity: Int
    private let requestedSize: Int
    private(set) var inUse = 0
    let gauge: PipeGauge

    init(capacity: Int, pipeSize: Int, gauge: PipeGauge = PipeGauge(limit: 0)) {
        self.capacity = capacity
        self.gauge = gauge
        // Never below the kernel's 64 KiB default: a pipe must take a whole copy buffer (see pump).
        requestedSize = pipeSize == 0 ? 0 : max(pipeSize, 65536)
        free.reserveCapacity(capacity)
    }

    /// A pipe holding at least `minimum` bytes, or nil when the process already has `maxpipes` in use
    /// or none can be made (out of fds, or the kernel shrank a new pipe below `minimum`: an
    /// unprivileged user past fs.pipe-user-pages-soft gets 8 KiB pipes). The caller then copies
    /// instead of splicing, as HAProxy does. `pastLimit`: bytes already read must be parked, and the
    /// pipe is their only buffer, so the cap does not apply.
    mutating func take(minimum: Int = 1, pastLimit: Bool = false) -> Pipe? {
        guard gauge.reserve(pastLimit: pastLimit) else { return nil }
        if let i = free.lastIndex(where: { $0.bytes >= minimum }) {
            inUse += 1
            gauge.pooled(-1)
            return free.remove(at: i)
        }
        var fds: [Int32] = [0, 0]
        if unsafe cepoll_pipe2(&fds) < 0 {
            gauge.release()
            return nil
        }
        if requestedSize > 0 { _ = cepoll_set_pipe_size(fds[1], Int32(requestedSize)) }
        let pipe = Pipe(readEnd: fds[0], writeEnd: fds[1], bytes: max(0, Int(cepoll_get_pipe_size(fds[1]))))
        guard pipe.bytes >= minimum, pipe.bytes > 0 else {
            Self.destroy(pipe)
            gauge.release()
            return nil
        }
        inUse += 1
        return pipe
    }

    /// Returns an empty pipe for reuse.
    mutating func giveBack(_ p: Pipe) {
        inUse -= 1
        gauge.release()
        if free.count < capacity {
            free.append(p)
            gauge.pooled(1)
        } else {
            Self.destroy(p)
        }
    }

    /// Closes a pipe that may still hold data.
    mutating func discard(_ p: Pipe) {
        inUse -= 1
        gauge.release()
        Self.destroy(p)
    }

    mutating func closeAll() {
        for p in free { Self.destroy(p) }
        gauge.pooled(-free.count)
        free.removeAll()
    }

    private static func destroy(_ p: Pipe) {
        _ = cepoll_close(p.readEnd)
        _ = cepoll_close(p.writeEnd)
    }
}
