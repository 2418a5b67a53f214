import CEpoll
import Glibc
import Splicer

/// One health check in flight: a non-blocking connection to the check address, the request bytes
/// (HTTP checks), and the response read so far. Driven by the checker's epoll loop.
struct CheckProbe {
    enum Step { case pending, finished(CheckResult) }

    private(set) var fd: Int32 = -1
    private var connected = false
    /// The response bytes read so far (Patroni-aware mode parses the JSON body).
    private(set) var response: [UInt8] = []
    private let startedMs: UInt64
    /// The connect must finish by this time (L4TOUT), the whole check by `deadlineMs` (L7TOUT).
    let connectDeadlineMs: UInt64
    let deadlineMs: UInt64
    /// Responses are cut at HAProxy's tune.bufsize.
    static let maxResponse = 16384

    init(nowMs: UInt64, connectTimeoutMs: Int, totalTimeoutMs: Int) {
        startedMs = nowMs
        connectDeadlineMs = nowMs + UInt64(connectTimeoutMs)
        deadlineMs = nowMs + UInt64(max(connectTimeoutMs, totalTimeoutMs))
    }

    var nextDeadline: UInt64 { connected ? deadlineMs : min(connectDeadlineMs, deadlineMs) }

    private func duration(_ now: UInt64) -> Int { Int(now &- startedMs) }

    /// Starts the connect; a refusal can be known at once.
    mutating func start(address: SocketAddress, now: UInt64) -> Step {
        do {
            let (fd, isUp) = try Socket.startConnect(to: address, noDelay: false)
            self.fd = fd
            connected = isUp
            return .pending
        } catch {
            return .finished(l4Failure(error.code, now))
        }
    }

    private func l4Failure(_ code: Int32, _ now: UInt64) -> CheckResult {
        CheckResult(status: .l4connect, code: nil, info: String(cString: strerror(code)), durationMs: duration(now))
    }

    /// Socket events: finish the connect, send the request, read the response.
    /// `readToEnd`: judge only once the server closed (Patroni's GET replies have no Content-Length).
    /// `events`: the epoll flags; writable with no error or hang-up means the connect succeeded, so
    /// SO_ERROR is read only for a failure (to name it).
    mutating func onEvent(request: [UInt8]?, expects: [HTTPCheckExpect], readToEnd: Bool = false, events: UInt32,
                          now: UInt64) -> Step {
        if !connected {
            if events & (CEPOLL_EPOLLERR | CEPOLL_EPOLLHUP) != 0 {
                let err = Socket.pendingError(fd)
                return .finished(l4Failure(err == 0 ? ECONNRESET : err, now))
            }
            guard events & CEPOLL_EPOLLOUT != 0 else { return .pending }
            connected = true
            guard let request else {
                return .finished(CheckResult(status: .l4ok, code: nil, info: nil, durationMs: duration(now)))
            }
            if case .failed(let e) = IOResult(request.withUnsafeBytes { cepoll_write(fd, $0.baseAddress, UInt($0.count)) }) {
                return .finished(l4Failure(e.code, now))
            }
            // Unless bytes came with this very event (edge-triggered: no second edge for them), the
            // reply cannot be there yet: wait for its edge instead of a read that says EAGAIN.
            if events & (CEPOLL_EPOLLIN | CEPOLL_EPOLLRDHUP) == 0 { return .pending }
        }
        guard request != nil else {
            return .finished(CheckResult(status: .l4ok, code: nil, info: nil, durationMs: duration(now)))
        }
        var buf = [UInt8](repeating: 0, count: 4096)
        var closed = false
        while response.count < CheckProbe.maxResponse {
            let read = IOResult(buf.withUnsafeMutableBytes { cepoll_read(fd, $0.baseAddress, UInt($0.count)) })
            if case .done(let n) = read {
                response += buf[0..<n]
            } else if read == .end {
                closed = true
                break
            } else if read == .wouldBlock {
                break
            } else if read == .interrupted {
                continue
            } else {
                // Reset before any response: the server answered nothing valid.
                if response.isEmpty {
                    return .finished(CheckResult(status: .l7response, code: nil, info: nil, durationMs: duration(now)))
                }
                closed = true
                break
            }
        }
        let complete = closed || response.count >= CheckProbe.maxResponse
        if readToEnd && !complete { return .pending }
        if let r = HTTPCheckEvaluator.evaluate(response, expects: expects, complete: complete, durationMs: duration(now)) {
            return .finished(r)
        }
        return .pending
    }

    /// Called when `nextDeadline` has passed.
    func timedOut(now: UInt64) -> CheckResult {
        CheckResult(status: connected ? .l7timeout : .l4timeout, code: nil, info: nil, durationMs: duration(now))
    }

    /// Closes the check connection. gproxy closes with a FIN, where HAProxy sends an RST that old
    /// Patroni versions log as a traceback on every check (patroni/patroni#2278).
    mutating func close() {
        if fd >= 0 { Socket.close(fd) }
        fd = -1
    }
}
