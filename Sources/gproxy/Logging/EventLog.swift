import Foundation
import Glibc
import Logging

/// Where gproxy's event messages go, worded and levelled as HAProxy's so existing log alerts match:
/// every event is printed to stderr as `[WARNING]  (pid) : text` / `[ALERT]    (pid) : text`
/// (unless `-q`) and sent to the proxy's log targets at its syslog level.
///
/// It is exposed as a swift-log `Logger` (`EventLog.logger`) so library code can log through the
/// standard API; the handler maps the `severity` metadata (or the swift-log level) to syslog.
final class EventLog: @unchecked Sendable {
    let sink: LogSink
    let quiet: Bool
    let pid = getpid()
    private let lock = NSLock()

    init(sink: LogSink, quiet: Bool) {
        self.sink = sink
        self.quiet = quiet
    }

    /// Emits one event. `stderrLabel` is HAProxy's console label for it.
    /// `console` replaces the text on stderr where HAProxy words the two copies differently.
    func event(_ severity: SyslogSeverity, _ text: String, console: String? = nil, sink override: LogSink? = nil) {
        if !quiet {
            let label: String
            switch severity {
            case .emerg, .alert, .crit, .err: label = "[ALERT]   "
            case .warning: label = "[WARNING] "
            default: label = "[NOTICE]  "
            }
            lock.lock()
            LogSink.write(2, "\(label) (\(pid)) : \(console ?? text)\n")
            lock.unlock()
        }
        (override ?? sink).emit(severity, text)
    }

    /// A swift-log `Logger` writing to stderr and to `sink` (nil = the global targets).
    func logger(label: String = "gproxy", sink: LogSink? = nil) -> Logger {
        let me = self
        return Logger(label: label) { _ in EventLogHandler(log: me, sink: sink) }
    }
}

extension Logger {
    /// Logs at one of HAProxy's exact syslog levels (emerg, alert, notice, ...), which swift-log's
    /// seven levels cannot all express: the level travels in the `severity` metadata.
    func event(_ severity: SyslogSeverity, _ text: String, console: String? = nil) {
        var metadata: Logger.Metadata = ["severity": .string(severity.name)]
        if let console { metadata["console"] = .string(console) }
        log(level: severity.swiftLogLevel, "\(text)", metadata: metadata)
    }
}

/// The swift-log handler behind gproxy's loggers: HAProxy-style stderr line plus the log targets.
struct EventLogHandler: LogHandler {
    let log: EventLog
    let sink: LogSink?
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let metadata = event.metadata
        var severity: SyslogSeverity
        switch event.level {
        case .trace, .debug: severity = .debug
        case .info: severity = .info
        case .notice: severity = .notice
        case .warning: severity = .warning
        case .error: severity = .err
        case .critical: severity = .alert
        }
        if case .string(let s)? = metadata?["severity"] ?? self.metadata["severity"],
           let exact = SyslogSeverity(name: s) {
            severity = exact
        }
        var console: String?
        if case .string(let c)? = metadata?["console"] { console = c }
        log.event(severity, event.message.description, console: console, sink: sink)
    }
}
