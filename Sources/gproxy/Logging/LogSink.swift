import CEpoll
import Foundation
import Glibc
import Logging
import Splicer

/// Syslog severities, as HAProxy uses them (its log levels map onto these numbers).
enum SyslogSeverity: Int, Comparable, Sendable {
    case emerg = 0, alert, crit, err, warning, notice, info, debug

    init?(name: String) {
        switch name {
        case "emerg": self = .emerg
        case "alert": self = .alert
        case "crit": self = .crit
        case "err": self = .err
        case "warning": self = .warning
        case "notice": self = .notice
        case "info": self = .info
        case "debug": self = .debug
        default: return nil
        }
    }

    static func < (a: SyslogSeverity, b: SyslogSeverity) -> Bool { a.rawValue > b.rawValue }

    var name: String {
        ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"][rawValue]
    }

    /// The nearest swift-log level (the exact one travels in metadata, see `Logger.event`).
    var swiftLogLevel: Logger.Level {
        switch self {
        case .emerg, .alert, .crit: .critical
        case .err: .error
        case .warning: .warning
        case .notice: .notice
        case .info: .info
        case .debug: .debug
        }
    }
}

/// Writes log lines to the configured `log` targets: stdout, stderr, or UDP syslog (RFC 3164 by
/// default: `<PRI>Mmm dd hh:mm:ss gproxy[pid]: message`). One sink per set of targets; shared by
/// the checker thread and the workers' session logger without a lock: the targets never change after
/// `init`, and each line leaves in one system call (one datagram, or one write(2), which a pipe keeps
/// whole up to PIPE_BUF = 4 KiB; `len` defaults to 1024). A worker never waits for the checker here.
final class LogSink: @unchecked Sendable {
    private struct Target {
        var config: LogTarget
        var facility: Int
        var maxLevel: SyslogSeverity
        var udpFd: Int32
        var udpAddress: SocketAddress?
    }

    private let targets: [Target]
    private let pid = getpid()
    private let tag: String

    init(targets configs: [LogTarget], tag: String = "gproxy") {
        self.tag = tag
        var targets: [Target] = []
        for c in configs {
            var t = Target(config: c, facility: LogSink.facilityNumber(c.facility),
                           maxLevel: c.level.flatMap(SyslogSeverity.init(name:)) ?? .debug, udpFd: -1, udpAddress: nil)
            if case .udp(let host, let port) = c.destination, let addr = SocketAddress(ip: host, port: port) {
                t.udpAddress = addr
                t.udpFd = socket(addr.family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            }
            targets.append(t)
        }
        self.targets = targets
    }

    deinit { for t in targets where t.udpFd >= 0 { close(t.udpFd) } }

    var isEmpty: Bool { targets.isEmpty }

    func emit(_ severity: SyslogSeverity, _ message: String) {
        guard !targets.isEmpty else { return }
        for t in targets where severity.rawValue <= t.maxLevel.rawValue {
            let line: String
            switch t.config.format {
            case "raw": line = message
            case "short": line = "<\(severity.rawValue)>\(message)"
            default:
                line = "<\(t.facility * 8 + severity.rawValue)>\(LogSink.timestamp()) \(tag)[\(pid)]: \(message)"
            }
            // `len`: HAProxy cuts each line to that many bytes; on a stream the LF counts in it.
            let maxLength = t.config.maxLength
            switch t.config.destination {
            case .stdout: LogSink.write(1, LogSink.cut(line, maxLength: maxLength, newline: true))
            case .stderr: LogSink.write(2, LogSink.cut(line, maxLength: maxLength, newline: true))
            case .udp:
                guard t.udpFd >= 0, var addr = t.udpAddress else { continue }
                _ = SocketAddressIO.sendto(t.udpFd, LogSink.cut(line, maxLength: maxLength, newline: false), &addr)
            }
        }
    }

    /// A line cut to `maxLength` bytes; with `newline`, the LF counts in the limit.
    static func cut(_ line: String, maxLength: Int, newline: Bool) -> [UInt8] {
        var bytes = Array(line.utf8.prefix(newline ? maxLength - 1 : maxLength))
        if newline { bytes.append(0x0A) }
        return bytes
    }

    static func write(_ fd: Int32, _ s: String) {
        write(fd, Array(s.utf8))
    }

    static func write(_ fd: Int32, _ bytes: [UInt8]) {
        var bytes = bytes
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { return }
            off += n
        }
    }

    /// RFC 3164 timestamp, e.g. "Nov 24 19:04:09".
    static func timestamp() -> String {
        var t = time(nil)
        var tmv = tm()
        localtime_r(&t, &tmv)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let day = tmv.tm_mday < 10 ? " \(tmv.tm_mday)" : "\(tmv.tm_mday)"
        return "\(months[Int(tmv.tm_mon)]) \(day) \(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec))"
    }

    static func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }

    static func facilityNumber(_ name: String) -> Int {
        let names = ["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
                     "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
                     "local5", "local6", "local7"]
        return names.firstIndex(of: name) ?? 16
    }
}

/// sendto with a SocketAddress (its storage is internal to Splicer, so go through the C shim's type).
enum SocketAddressIO {
    static func sendto(_ fd: Int32, _ bytes: [UInt8], _ addr: inout SocketAddress) -> Int {
        let (ip, port) = addr.ipAndPort
        var storage = sockaddr_storage()
        let len = cepoll_make_addr(ip, Int32(port), &storage)
        guard len > 0 else { return -1 }
        return bytes.withUnsafeBytes { buf in
            withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.sendto(fd, buf.baseAddress, buf.count, 0, $0, socklen_t(len))
                }
            }
        }
    }
}
