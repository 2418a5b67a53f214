import CEpoll

/// Monotonic time for timers and durations (vDSO, no syscall).
public enum Clock {
    @inline(__always) public static func nowMs() -> UInt64 { cepoll_monotonic_ms() }
    /// `now - then`, or 0 when `then` was stamped later by another thread (no unsigned underflow).
    @inline(__always) public static func elapsed(_ then: UInt64, _ now: UInt64) -> UInt64 { now > then ? now - then : 0 }
}
