import CEpoll
import Glibc
import Splicer

/// Blocking loopback sockets for tests (the engine under test is non-blocking; the peers need not be).
struct BlockingSocket: Sendable {
    let fd: Int32

    static func connect(port: UInt16, timeoutMs: Int = 10_000) -> BlockingSocket? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if r != 0 { Glibc.close(fd); return nil }
        let s = BlockingSocket(fd: fd)
        s.setTimeout(ms: timeoutMs)
        return s
    }

    func setTimeout(ms: Int) {
        var tv = timeval(tv_sec: ms / 1000, tv_usec: (ms % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return false
            }
            off += n
        }
        return true
    }

    func send(_ s: String) -> Bool { send(Array(s.utf8)) }

    /// Reads once (up to `max` bytes); nil on error/timeout, [] on EOF.
    func receive(max: Int = 65536) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: max)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, max, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            return Array(buf[0..<n])
        }
    }

    /// Reads until EOF (or error): returns the bytes and whether EOF was reached cleanly.
    func receiveAll() -> (bytes: [UInt8], eof: Bool) {
        var out: [UInt8] = []
        while true {
            guard let chunk = receive() else { return (out, false) }
            if chunk.isEmpty { return (out, true) }
            out += chunk
        }
    }

    /// Reads exactly n bytes (nil if the stream ends or fails first).
    func receive(exactly n: Int) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(n)
        while out.count < n {
            guard let chunk = receive(max: min(65536, n - out.count)), !chunk.isEmpty else { return nil }
            out += chunk
        }
        return out
    }

    func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }
    func close() { Glibc.close(fd) }
    func resetClose() { _ = cepoll_close_rst(fd) }
}

/// A threaded loopback server for tests: each accepted connection runs `handler` on its own thread.
final class TestServer: @unchecked Sendable {
    let listenFd: Int32
    let port: UInt16
    private let handler: @Sendable (BlockingSocket) -> Void
    private var stopped = false

    /// `receiveBuffer` > 0 shrinks SO_RCVBUF of accepted sockets, so a slow reader pushes back fast.
    init(receiveBuffer: Int32 = 0, _ handler: @escaping @Sendable (BlockingSocket) -> Void) {
        self.handler = handler
        let lfd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        listenFd = lfd
        var one: Int32 = 1
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        var rcv = receiveBuffer
        if rcv > 0 { setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcv, 4) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(lfd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        listen(lfd, 1024)
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(lfd, $0, &len) }
        }
        port = UInt16(bigEndian: bound.sin_port)
        let fd = lfd
        NamedThread.detached(name: "test-accept") { [handler] in
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 {
                    if errno == EINTR { continue }
                    return
                }
                let sock = BlockingSocket(fd: c)
                sock.setTimeout(ms: 15_000)
                let h = handler
                NamedThread.detached(name: "test-conn") { h(sock) }
            }
        }
    }

    /// Stops accepting: shutdown wakes the accept thread, which then exits.
    func stop() {
        guard !stopped else { return }
        stopped = true
        Glibc.shutdown(listenFd, Int32(SHUT_RDWR))
        Glibc.close(listenFd)
    }

    deinit { stop() }

    /// Echoes until the client half-closes, then closes.
    static func echo() -> TestServer {
        TestServer { s in
            while let chunk = s.receive(), !chunk.isEmpty { if !s.send(chunk) { break } }
            s.close()
        }
    }
}

/// A port nothing listens on (bound, then closed).
func closedPort() -> UInt16 {
    let s = TestServer { $0.close() }
    let p = s.port
    s.stop()
    return p
}
