/// The section state machine of the haproxy.cfg reader (HAProxy 2.6's `readcfgfile()` and
/// `cfg_parse_listen()` entry logic).
///
/// Invariants:
/// - a section keyword closes the current section, anywhere; each file starts outside any section;
/// - a `defaults` section starts from the built-in settings (or from `defaults X from Y`), and every
///   later proxy starts as a copy of the latest defaults (or of `from NAME`);
/// - every proxy owns a hidden default server, copied from its defaults, that `default-server`
///   lines build up and each `server` line snapshots before applying its own options;
/// - errors never stop the parse, except after 50 fatal errors in one file (HAProxy's limit).

/// A place in the configuration.
struct SourceLocation: Equatable, Sendable {
    var file: String
    var line: Int
}

/// A proxy (or defaults section) being built, with what validation needs to point at.
struct ProxyState: Sendable {
    var config: ProxyConfig
    var isDefaults = false
    /// The hidden default server (`default-server` lines build it up).
    var defaultServer = ServerConfig(name: "", host: "", port: 0)
    /// Where `mode` was set (possibly in the defaults section it came from).
    var modeLocation: SourceLocation?
    var defaultBackendLocation: SourceLocation?
    var useBackendLocations: [SourceLocation] = []
    var httpCheckExpectLocation: SourceLocation?
    /// Index into `config.servers` of each server name and custom id (duplicate checks without a scan).
    var serverByName: [String: Int] = [:]
    var serverByID: [Int: Int] = [:]

    /// HAProxy's `proxy_type_str()`: listen sections are called "proxy" in messages.
    var typeWord: String {
        if isDefaults { return "defaults" }
        switch config.kind {
        case .listen: return "proxy"
        case .frontend: return "frontend"
        case .backend: return "backend"
        }
    }

    /// The built-in settings a `defaults` section resets to.
    static func builtinDefaults() -> ProxyState {
        ProxyState(config: ProxyConfig(name: "", kind: .listen), isDefaults: true)
    }
}

/// Parses configuration text into a `GProxyConfig`; see `ConfigLoader` for the public entry points.
struct ConfigParser {
    enum Section: Equatable { case none, global, proxy, skipped }

    let environment: [String: String]
    let resolver: HostResolver
    var config = GProxyConfig()
    var errors: [ConfigDiagnostic] = []
    /// Proxies closed so far, parallel to `config.proxies`.
    var finished: [ProxyState] = []
    /// Indices into `finished` of the proxies with each name (duplicate checks without a scan).
    var proxiesByName: [String: [Int]] = [:]

    var file = ""
    var line = 0
    var section = Section.none
    var sectionKeyword = ""
    var sectionName = ""
    /// The proxy or defaults section being parsed.
    var current: ProxyState?
    /// The latest `defaults` section (built-ins until one is seen).
    var defaults = ProxyState.builtinDefaults()
    var namedDefaults: [String: ProxyState] = [:]
    /// Fatal errors in the current file (HAProxy stops a file after 50).
    var fatalInFile = 0
    static let maxFatalErrors = 50

    init(environment: [String: String], resolver: HostResolver = .system) {
        self.environment = environment
        self.resolver = resolver
    }

    // MARK: diagnostics

    mutating func error(_ message: String) {
        errors.append(ConfigDiagnostic(file: file, line: line, message: message))
        fatalInFile += 1
    }

    mutating func error(_ message: String, at location: SourceLocation) {
        errors.append(ConfigDiagnostic(file: location.file, line: location.line, message: message))
    }

    mutating func warning(_ message: String) {
        config.warnings.append(ConfigDiagnostic(file: file, line: line, message: message))
    }

    mutating func notImplemented(_ keyword: String) {
        error("keyword '\(keyword)' is not implemented by gproxy")
    }

    // MARK: files and lines

    /// A file's lines, handed one by one to the parser's callback (false = stop); returns the file's
    /// trailing diagnostic (missing final LF, stray NUL), if any.
    typealias LineScanner = ((RawConfigLine) -> Bool) -> (line: Int, message: String)?

    /// Parses one file's bytes. Sections do not continue across files; defaults do.
    mutating func parseFile(_ data: [UInt8], name: String) {
        parseFile(name: name) { ConfigTokenizer.forEachLine(data, $0) }
    }

    /// Parses one file, line by line as `scan` reads them (a large file is never held whole).
    mutating func parseFile(name: String, lines scan: LineScanner) {
        closeSection()
        file = name
        line = 0
        section = .none
        fatalInFile = 0
        var stopped = false
        let trailer = scan { raw in
            line = raw.number
            if fatalInFile >= Self.maxFatalErrors {
                error("too many fatal errors (\(Self.maxFatalErrors)), stopping now.")
                stopped = true
                return false
            }
            let context = ExpansionContext(environment: environment, file: file, line: line,
                                           section: sectionName.isEmpty ? sectionKeyword : sectionName)
            do throws(TokenizeError) {
                let words = try ConfigTokenizer.words(of: raw.bytes, context: context)
                if !words.isEmpty { parseStatement(words) }
            } catch {
                self.error(error.message)
            }
            return true
        }
        if stopped {
            closeSection()
            return
        }
        if let trailer {
            line = trailer.line
            error(trailer.message)
        }
        closeSection()
    }

    /// Dispatches one tokenized line.
    mutating func parseStatement(_ rawWords: [String]) {
        var words = rawWords
        if words[0].hasPrefix(".") {
            parseDirective(words)
            return
        }
        // The `no` / `default` modifiers apply only to `option` and `log` here.
        var negated = false
        if words[0] == "no" || words[0] == "default" {
            let modifier = words.removeFirst()
            guard let keyword = words.first, keyword == "option" || keyword == "log" else {
                error("negation/default currently supported only for options, log, busy-polling, set-dumpable, "
                    + "strict-limits, insecure-fork-wanted and numa-cpu-mapping.")
                return
            }
            if modifier == "default" {
                error("'default \(keyword)' is not implemented by gproxy")
                return
            }
            negated = true
        }
        let keyword = words[0]
        if ConfigKeywordTables.implementedSections.contains(keyword) {
            openSection(words)
            return
        }
        if ConfigKeywordTables.otherSections.contains(keyword) {
            closeSection()
            section = .skipped
            sectionKeyword = keyword
            sectionName = words.count > 1 ? words[1] : ""
            error("section '\(keyword)' is not implemented by gproxy")
            return
        }
        switch section {
        case .none:
            error("unknown keyword '\(keyword)' out of section.")
        case .skipped:
            return  // already reported once at the section line
        case .global:
            parseGlobalKeyword(words)
        case .proxy:
            parseProxyKeyword(words, negated: negated)
        }
    }

    /// `.if`/`.elif`/`.else`/`.endif` and message directives.
    mutating func parseDirective(_ words: [String]) {
        switch words[0] {
        case ".notice", ".diag":
            return
        case ".warning":
            warning("'\(words.count > 1 ? words[1] : "")'.")
        case ".alert":
            error("'\(words.count > 1 ? words[1] : "")'.")
        case ".if", ".elif", ".else", ".endif":
            error("conditional block '\(words[0])' is not implemented by gproxy")
        default:
            error("unknown directive '\(words[0])'.")
        }
    }

    // MARK: sections

    /// Ends the current section: a proxy joins the config, a defaults section becomes the latest one.
    mutating func closeSection() {
        defer { current = nil }
        guard let state = current else { return }
        if state.isDefaults {
            defaults = state
            if !state.config.name.isEmpty { namedDefaults[state.config.name] = state }
        } else {
            var proxy = state.config
            // Members discovered at run time are built from the proxy's last default-server.
            if proxy.patroni?.discover == true { proxy.patroni?.template = state.defaultServer }
            // The lookup tables served the duplicate checks; validation does not need them.
            var kept = state
            kept.serverByName = [:]
            kept.serverByID = [:]
            kept.config.servers = []
            proxiesByName[proxy.name, default: []].append(finished.count)
            finished.append(kept)
            config.proxies.append(proxy)
        }
    }

    mutating func openSection(_ words: [String]) {
        closeSection()
        let keyword = words[0]
        sectionKeyword = keyword
        sectionName = words.count > 1 ? words[1] : ""
        if keyword == "global" {
            section = .global
            if words.count > 1 { error("'global' cannot handle unexpected argument '\(words[1])'.") }
            return
        }
        section = .proxy
        let isDefaults = keyword == "defaults"
        let kind: ProxyKind = keyword == "frontend" ? .frontend : keyword == "backend" ? .backend : .listen

        // `<kw> [name] [from <defaults>]`
        var name = ""
        var fromName: String?
        var rest = words.dropFirst()
        if let first = rest.first, first != "from" || !isDefaults {
            name = first
            rest = rest.dropFirst()
        }
        if let from = rest.first {
            if from == "from" {
                if rest.count < 2 {
                    error("'\(keyword) \(name)': 'from' expects a defaults section name.")
                } else {
                    fromName = rest[rest.startIndex + 1]
                    if rest.count > 2 {
                        error("'\(keyword)' cannot handle unexpected argument '\(rest[rest.startIndex + 2])'.")
                    }
                }
            } else {
                error("'\(keyword)' cannot handle unexpected argument '\(from)'.")
            }
        }
        if !isDefaults, name.isEmpty {
            error("'\(keyword)' expects an <id> argument")
        }
        if let bad = Self.invalidNameCharacter(name) {
            error("character '\(bad)' is not permitted in '\(keyword)' name '\(name)'.")
        }

        var template = defaults
        if isDefaults, fromName == nil { template = ProxyState.builtinDefaults() }
        if let fromName {
            if let named = namedDefaults[fromName] {
                template = named
            } else {
                error("\(keyword) '\(name)': unable to find defaults section '\(fromName)'.")
            }
        }

        var state = template
        state.isDefaults = isDefaults
        state.config.name = name
        state.config.kind = isDefaults ? .listen : kind
        state.config.file = file
        state.config.line = line
        state.config.binds = []
        state.config.servers = []
        state.serverByName = [:]
        state.serverByID = [:]
        state.config.useBackends = []
        state.useBackendLocations = []
        if !isDefaults { inheritByCapability(&state) }
        if !isDefaults, !name.isEmpty { checkDuplicateProxy(state) }
        current = state
    }

    /// HAProxy copies frontend-only settings only into proxies with a frontend, and likewise for backends.
    private func inheritByCapability(_ state: inout ProxyState) {
        let kind = state.config.kind
        if !kind.hasFrontend {
            state.config.timeouts.client = nil
            state.config.timeouts.clientFin = nil
            state.config.maxconn = nil
            state.config.defaultBackend = nil
            state.defaultBackendLocation = nil
            state.config.tcplog = false
            state.config.httplog = false
        }
        if !kind.hasBackend {
            state.config.timeouts.connect = nil
            state.config.timeouts.server = nil
            state.config.timeouts.queue = nil
            state.config.timeouts.check = nil
            state.config.timeouts.tunnel = nil
            state.config.timeouts.serverFin = nil
            state.config.httpCheck = nil
            state.config.httpCheckExpects = []
            state.httpCheckExpectLocation = nil
            state.config.stats = StatsConfig()
        }
    }

    /// Two proxies with overlapping capabilities cannot share a name (a frontend and a backend can).
    private mutating func checkDuplicateProxy(_ state: ProxyState) {
        let kind = state.config.kind
        for index in proxiesByName[state.config.name] ?? [] {
            let other = finished[index]
            let overlap = (kind.hasFrontend && other.config.kind.hasFrontend)
                || (kind.hasBackend && other.config.kind.hasBackend)
            if overlap {
                error("\(state.typeWord) '\(state.config.name)' has the same name as \(other.typeWord) "
                    + "'\(other.config.name)' declared at \(other.config.file):\(other.config.line).")
                return
            }
        }
    }

    /// HAProxy's `invalid_char()`: names are made of ASCII letters, digits and `.-_:`. Returns the first
    /// other character (a byte that is not UTF-8 shows as U+FFFD).
    static func invalidNameCharacter(_ name: String) -> Character? {
        for scalar in name.unicodeScalars {
            let v = scalar.value
            let ok = (v >= 0x61 && v <= 0x7A) || (v >= 0x41 && v <= 0x5A) || (v >= 0x30 && v <= 0x39)
                || v == 0x2E || v == 0x2D || v == 0x5F || v == 0x3A
            if !ok { return Character(scalar) }
        }
        return nil
    }

    /// Parses the files' contents and validates the result. No file system access; server host names
    /// are resolved through `resolver`.
    mutating func finish() -> GProxyConfig {
        closeSection()
        validate()
        return config
    }
}
