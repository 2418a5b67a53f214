/// Parsing of runtime API (stats socket) commands, §10. A line may hold several commands separated
/// by `;` (`\;` keeps a literal semicolon); words are separated by spaces or tabs.
enum RuntimeCommand: Sendable, Equatable {
    case help
    case prompt
    case quit
    case showInfo
    /// `show stat [json|typed] [up] [no-maint]`.
    case showStat(json: Bool, filter: StatsRows.Filter)
    case showServersState(backend: String?)
    case disableServer(backend: String, server: String)
    case enableServer(backend: String, server: String)
    case setServerState(backend: String, server: String, state: ServerAdminState)
    /// `set server B/S weight W` and `set weight B/S W`; `W` may end in `%` (of the initial weight).
    case setWeight(backend: String, server: String, weight: String)
    case getWeight(backend: String, server: String)
    /// `shutdown sessions server B/S`: cut that server's established sessions (log flag `K`).
    case shutdownSessions(backend: String, server: String)
    /// `clear counters` (the max values) / `clear counters all` (every counter, as after a restart).
    case clearCounters(all: Bool)
    /// A known command used wrongly: the reply text.
    case usage(String)
    /// Nothing matched: the words as typed.
    case unknown(String)

    /// Splits a line into commands at unescaped `;`, then each command into words.
    static func parseLine(_ line: String) -> [RuntimeCommand] {
        var commands: [[String]] = []
        var words: [String] = []
        var word = ""
        var escaped = false
        func endWord() {
            if !word.isEmpty { words.append(word) }
            word = ""
        }
        // By scalar, not Character: "\r\n", or a prepend mark before ";", is one Character.
        for ch in line.unicodeScalars {
            if escaped {
                word.unicodeScalars.append(ch)
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else if ch == ";" {
                endWord()
                commands.append(words)
                words = []
            } else if ch == " " || ch == "\t" || ch == "\r" || ch == "\n" {
                endWord()
            } else {
                word.unicodeScalars.append(ch)
            }
        }
        endWord()
        commands.append(words)
        return commands.filter { !$0.isEmpty }.map(parse(words:))
    }

    static func parse(words w: [String]) -> RuntimeCommand {
        switch (w.first ?? "", w.count > 1 ? w[1] : "") {
        case ("help", _): return .help
        case ("prompt", _): return .prompt
        case ("quit", _): return .quit
        case ("show", "info"): return .showInfo
        case ("show", "stat"):
            var filter = StatsRows.Filter()
            filter.upOnly = w.contains("up")
            filter.noMaint = w.contains("no-maint")
            return .showStat(json: w.contains("json"), filter: filter)
        case ("show", "servers") where w.count > 2 && w[2] == "state":
            return .showServersState(backend: w.count > 3 ? w[3] : nil)
        case ("disable", "server"), ("enable", "server"):
            guard w.count > 2, let (b, s) = backendServer(w[2]) else { return .usage("Require 'backend/server'.") }
            return w[0] == "disable" ? .disableServer(backend: b, server: s) : .enableServer(backend: b, server: s)
        case ("set", "server"):
            guard w.count > 2, let (b, s) = backendServer(w[2]) else { return .usage("Require 'backend/server'.") }
            switch w.count > 3 ? w[3] : "" {
            case "state":
                guard w.count > 4, let st = ServerAdminState(rawValue: w[4]) else {
                    return .usage("'set server <srv> state' expects 'ready', 'drain' and 'maint'.")
                }
                return .setServerState(backend: b, server: s, state: st)
            case "weight":
                guard w.count > 4 else { return .usage("set server <b>/<s> weight requires an integer.") }
                return .setWeight(backend: b, server: s, weight: w[4])
            default:
                return .usage("usage: set server <backend>/<server> state ready|drain|maint | weight <w>")
            }
        case ("set", "weight"):
            guard w.count > 2, let (b, s) = backendServer(w[2]) else { return .usage("Require 'backend/server'.") }
            guard w.count > 3 else { return .usage("Require <weight>.") }
            return .setWeight(backend: b, server: s, weight: w[3])
        case ("get", "weight"):
            guard w.count > 2, let (b, s) = backendServer(w[2]) else { return .usage("Require 'backend/server'.") }
            return .getWeight(backend: b, server: s)
        case ("shutdown", "sessions"):
            guard w.count > 3, w[2] == "server", let (b, s) = backendServer(w[3]) else {
                return .usage("Require 'server <backend>/<server>'.")
            }
            return .shutdownSessions(backend: b, server: s)
        case ("clear", "counters"):
            return .clearCounters(all: w.count > 2 && w[2] == "all")
        default:
            return .unknown(w.joined(separator: " "))
        }
    }

    /// Splits "backend/server" (either part may be `#<id>`).
    static func backendServer(_ s: String) -> (String, String)? {
        guard let slash = s.firstIndex(of: "/") else { return nil }
        let b = String(s[..<slash]), srv = String(s[s.index(after: slash)...])
        return b.isEmpty || srv.isEmpty ? nil : (b, srv)
    }

    /// The `help` text, in HAProxy's layout (two leading spaces, name, colon, description).
    static let helpText = """
    The following commands are valid at this level:
      help           : this message
      prompt         : toggle interactive mode with prompt
      quit           : disconnect
      show info      : report information about the running process
      show stat [json] [up] [no-maint] : report counters for each proxy and server
      show servers state [<backend>]   : dump volatile server information (all or for a single backend)
      disable server <bk>/<srv>        : disable a server for maintenance (use 'set server' instead)
      enable server <bk>/<srv>         : enable a disabled server (use 'set server' instead)
      set server <bk>/<srv> state ready|drain|maint : change a server's administrative state
      set server <bk>/<srv> weight <w>[%]           : change a server's weight
      set weight <bk>/<srv> (<w>|<w>%) : change a server's weight (deprecated)
      get weight <bk>/<srv>            : report a server's current weight
      shutdown sessions server <bk>/<srv> : kill a server's established sessions
      clear counters [all]             : clear max statistics counters (or all counters)

    """
}
