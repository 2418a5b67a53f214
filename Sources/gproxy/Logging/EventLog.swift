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

    var logger: Logger {
        let me = self
        return Logger(label: "gproxy") { _ in EventLogHandler(log: me) }
    }
}

/// swift-log bridge: `logger.critical("...", metadata: ["severity": "emerg"])`.
struct EventLogHandler: LogHandler {
    let log: EventLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

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
        log.event(severity, event.message.description)
    }
}
