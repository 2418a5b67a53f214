import Glibc

/// RLIMIT_NOFILE against what the configuration needs, as HAProxy 2.6 does at start-up: raise the
/// soft limit (and the hard one when allowed, i.e. as root) to the need, and refuse to start when the
/// need is out of reach (`strict-limits`, on by default since 2.3) instead of failing accept() later.
enum FileDescriptorLimit {
    enum Outcome: Equatable {
        case fits
        /// The need is above what the process may have; `limit` is the soft limit after trying.
        case tooLow(limit: Int)
    }

    static func raise(to needed: Int) -> Outcome {
        guard needed > 0 else { return .fits }
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return .tooLow(limit: 0) }
        if limit.rlim_cur >= rlim_t(needed) { return .fits }  // infinity included
        var wanted = limit
        wanted.rlim_cur = rlim_t(needed)
        if limit.rlim_max < rlim_t(needed) { wanted.rlim_max = rlim_t(needed) }
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &wanted) == 0 { return .fits }
        // Out of reach: still take what is allowed, and say how far it got.
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return .tooLow(limit: Int(clamping: limit.rlim_cur))
    }
}
