/// Session timers at O(1) per event.
///
/// Every session in one phase of one proxy has the same timeout (say `timeout client 30s`), so a
/// list per distinct duration, kept in deadline order, is enough: re-arming a timer moves the
/// session to the tail of its list (unlink + append, a few stores), and the earliest deadline of a
/// list is always its head. The epoll timeout is the nearest head. Slots are session indices;
/// the links live in arrays, so arming allocates nothing.
struct TimerLists {
    private var durations: [UInt64] = []
    private var heads: [Int32] = []
    private var tails: [Int32] = []
    private var prev: [Int32] = []
    private var next: [Int32] = []
    private var deadline: [UInt64] = []
    private var owner: [Int32] = []

    /// The list for a duration in ms; -1 (no timer) for nil = infinite.
    mutating func list(for ms: Int?) -> Int32 {
        guard let ms else { return -1 }
        let d = UInt64(max(0, ms))
        if let i = durations.firstIndex(of: d) { return Int32(i) }
        durations.append(d)
        heads.append(-1)
        tails.append(-1)
        return Int32(durations.count - 1)
    }

    mutating func ensureCapacity(_ n: Int) {
        while owner.count < n {
            prev.append(-1)
            next.append(-1)
            deadline.append(0)
            owner.append(-1)
        }
    }

    /// (Re)starts `slot`'s timer on `list` from `now`; list -1 just disarms.
    @inline(__always)
    mutating func arm(_ slot: Int32, list: Int32, now: UInt64) {
        let i = Int(slot)
        if owner[i] == list && list >= 0 && tails[Int(list)] == slot && deadline[i] == now &+ durations[Int(list)] {
            return
        }
        disarm(slot)
        guard list >= 0 else { return }
        let l = Int(list)
        owner[i] = list
        deadline[i] = now &+ durations[l]
        prev[i] = tails[l]
        next[i] = -1
        if tails[l] >= 0 { next[Int(tails[l])] = slot } else { heads[l] = slot }
        tails[l] = slot
    }

    @inline(__always)
    mutating func disarm(_ slot: Int32) {
        let i = Int(slot)
        let l = Int(owner[i])
        guard l >= 0 else { return }
        if prev[i] >= 0 { next[Int(prev[i])] = next[i] } else { heads[l] = next[i] }
        if next[i] >= 0 { prev[Int(next[i])] = prev[i] } else { tails[l] = prev[i] }
        owner[i] = -1
        prev[i] = -1
        next[i] = -1
    }

    /// Milliseconds until the nearest deadline, for epoll_wait (-1 = none).
    func timeout(now: UInt64) -> Int32 {
        var best = UInt64.max
        for h in heads where h >= 0 { best = min(best, deadline[Int(h)]) }
        if best == UInt64.max { return -1 }
        return best <= now ? 0 : Int32(min(best - now, 60_000))
    }

    /// One expired slot (already disarmed), or nil when none is due.
    mutating func popExpired(now: UInt64) -> Int32? {
        for h in heads where h >= 0 && deadline[Int(h)] <= now {
            disarm(h)
            return h
        }
        return nil
    }
}
