import CEpoll
// A tiny blocking loopback client for the simulated-cluster tests: connect, send, read to EOF with
// a timeout, and report how the exchange ended (EOF, RST, timeout).

#if canImport(Glibc)
import Glibc
#endif
@testable import gproxy

/// How reading ended.
enum SimulatedReadEnd: Error, Equatable {
    case eof
    case reset
    case timeout
    case error(Int32)
}

/// A connect failure, carrying errno (ECONNREFUSED for a closed port).
struct SimulatedConnectError: Error, Equatable { var errno: Int32 }

/// One blocking TCP client connection to 127.0.0.1.
final class SimulatedTestClient {
    let fd: Int32

    /// Connects to 127.0.0.1:`port`; throws `SimulatedConnectError` with errno on failure.
    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 {
            let e = errno
            close(fd)
            throw SimulatedConnectError(errno: e)
        }
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads until EOF, error or `timeoutMs` of silence; returns the bytes and how it ended.
    func readToEnd(timeoutMs: Int = 2000) -> ([UInt8], SimulatedReadEnd) {
        var out: [UInt8] = []
        while true {
            switch readChunk(timeoutMs: timeoutMs) {
            case .success(let chunk) where chunk.isEmpty: return (out, .eof)
            case .success(let chunk): out += chunk
            case .failure(let end): return (out, end)
            }
        }
    }

    /// Reads exactly `count` bytes (or fewer on EOF/timeout).
    func read(count: Int, timeoutMs: Int = 2000) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count, case .success(let chunk) = readChunk(timeoutMs: timeoutMs, max: count - out.count),
            !chunk.isEmpty
        {
            out += chunk
        }
        return out
    }

    /// Reads up to and including the first newline.
    func readLine(timeoutMs: Int = 2000) -> String {
        var out: [UInt8] = []
        while out.last != 0x0A, case .success(let chunk) = readChunk(timeoutMs: timeoutMs, max: 1), !chunk.isEmpty {
            out += chunk
        }
        return String(decoding: out, as: UTF8.self)
    }

    func readChunk(timeoutMs: Int, max: Int = 65536) -> Result<[UInt8], SimulatedReadEnd> {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&p, 1, Int32(timeoutMs))
        if ready == 0 { return .failure(.timeout) }
        var buf = [UInt8](repeating: 0, count: max)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
        if n < 0 { return .failure(errno == ECONNRESET ? .reset : .error(errno)) }
        return .success(Array(buf[0..<n]))
    }
}

/// Sends one HTTP request to 127.0.0.1:`port` and returns the whole reply as text, and how it ended.
func simulatedHTTP(_ port: UInt16, _ request: String, timeoutMs: Int = 2000) throws -> (String, SimulatedReadEnd) {
    let client = try SimulatedTestClient(port: port)
    client.send(request)
    let (bytes, end) = client.readToEnd(timeoutMs: timeoutMs)
    return (String(decoding: bytes, as: UTF8.self), end)
}

/// The status-only reply of `OPTIONS <path> HTTP/1.0` (what HAProxy's check sends).
func simulatedOptions(_ port: UInt16, _ path: String = "/") throws -> String {
    try simulatedHTTP(port, "OPTIONS \(path) HTTP/1.0\r\n\r\n").0
}

let simulatedOK = "HTTP/1.0 200 OK\r\n\r\n"
let simulated503 = "HTTP/1.0 503 Service Unavailable\r\n\r\n"
