/// `stats admin`: the stats page's server actions, posted as HAProxy's page posts them
/// (`application/x-www-form-urlencoded`: `s=<server>` once per checked server, `action=<name>`,
/// `b=#<proxy id>`), applied through the same `RuntimeAdmin` the runtime socket uses, and answered
/// with a 303 back to the page carrying the outcome (`;st=DONE|PART|NONE|ERRP`), as HAProxy does.
enum StatsAdminForm {
    /// The actions offered: HAProxy's names; health/agent forcing is not offered (gproxy's checker
    /// owns health).
    static let actions: [(name: String, label: String)] = [
        ("ready", "Set state to READY"), ("drain", "Set state to DRAIN"), ("maint", "Set state to MAINT"),
        ("shutdown", "Kill Sessions"),
    ]

    enum Outcome: String, Sendable {
        /// Every selected server took the action.
        case done = "DONE"
        /// Some did.
        case partial = "PART"
        /// None was selected, or none took it.
        case none = "NONE"
        /// The request was malformed (unknown action or backend).
        case error = "ERRP"

        /// The banner the page shows after the redirect.
        var message: String {
            switch self {
            case .done: "Action processed successfully."
            case .partial: "Action not processed for every selected server."
            case .none: "Nothing has changed."
            case .error: "Action not processed: the request was invalid."
            }
        }
    }

    struct Submission: Equatable, Sendable {
        var action: String?
        /// `b`: the backend, `#<proxy id>` or its name.
        var backend: String?
        var servers: [String] = []
    }

    /// Decodes an urlencoded body; nil when it is not valid percent-encoding or UTF-8.
    static func parse(_ body: ArraySlice<UInt8>) -> Submission? {
        var form = Submission()
        for pair in body.split(separator: UInt8(ascii: "&")) {
            let kv = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = decode(kv[0]), let value = decode(kv.count > 1 ? kv[1] : []) else { return nil }
            switch key {
            case "action": form.action = value
            case "b": form.backend = value
            case "s": form.servers.append(value)
            default: break
            }
        }
        return form
    }

    private static func decode(_ bytes: ArraySlice<UInt8>) -> String? {
        var out: [UInt8] = []
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let c = bytes[i]
            if c == UInt8(ascii: "+") {
                out.append(0x20)
            } else if c == UInt8(ascii: "%") {
                guard i + 2 < bytes.endIndex, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) else { return nil }
                out.append(hi << 4 | lo)
                i += 2
            } else {
                out.append(c)
            }
            i += 1
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Applies a submission.
    static func apply(_ form: Submission, admin: any RuntimeAdmin) -> Outcome {
        guard let action = form.action, actions.contains(where: { $0.name == action }),
              let b = form.backend else { return .error }
        let snap = admin.snapshot()
        let proxy = b.hasPrefix("#")
            ? snap.proxies.first { "#\($0.id)" == b }
            : snap.proxies.first { $0.name == b }
        guard let proxy, proxy.backend != nil else { return .error }
        var applied = 0
        for name in form.servers where proxy.servers.contains(where: { $0.name == name }) {
            let failure: String?
            switch action {
            case "ready": failure = admin.setServerAdmin(backend: proxy.name, server: name, state: .ready)
            case "drain": failure = admin.setServerAdmin(backend: proxy.name, server: name, state: .drain)
            case "maint": failure = admin.setServerAdmin(backend: proxy.name, server: name, state: .maint)
            default: failure = admin.shutdownSessions(backend: proxy.name, server: name)
            }
            if failure == nil { applied += 1 }
        }
        if applied == 0 { return .none }
        return applied == form.servers.count ? .done : .partial
    }
}
