import CEpoll

/// Monotonic time for timers and durations (vDSO, no syscall).
public enum Clock {
    @inline(__always) public static func nowMs() -> UInt64 { cepoll_monotonic_ms() }
    @inline(__always) public static func nowUs() -> UInt64 { cepoll_monotonic_us() }
}
