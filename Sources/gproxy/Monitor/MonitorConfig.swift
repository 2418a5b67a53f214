/// HAProxy's `monitor-uri` and `monitor fail` in a `mode http` frontend/listen: a health endpoint
/// for VIP managers (keepalived) and load balancers. gproxy supports the ACL subset they need:
///
///     monitor-uri /health
///     acl writer_down nbsrv(rw) lt 1        # nbsrv(BACKEND) [lt|le|eq|ge|gt] N
///     monitor fail if writer_down           # or: monitor fail unless NAME; !NAME; A B (and); A || B
///
/// `nbsrv(b)` is the number of usable servers of backend `b` (HAProxy's `be_usable_srv()`): the
/// active servers the routing table lets take sessions, else its backup(s). In a Patroni-aware
/// `patroni primary` backend it is 1 exactly while a writer is confirmed.
struct MonitorConfig: Equatable, Sendable {
    /// `monitor-uri`; nil = no endpoint. Compared with the request's URI (path and query).
    var uri: String?
    /// `acl` lines of the proxy, in order; several lines with one name are ORed (HAProxy).
    var acls: [MonitorACL] = []
    /// `monitor fail` lines: the endpoint answers 503 when any of them holds.
    var failConditions: [MonitorCondition] = []
}

/// One `acl NAME nbsrv(BACKEND) OP N` line (or the predefined `TRUE`/`FALSE`).
struct MonitorACL: Equatable, Sendable {
    enum Comparison: String, Equatable, Sendable, CaseIterable {
        case lt, le, eq, ge, gt

        func holds(_ a: Int, _ b: Int) -> Bool {
            switch self {
            case .lt: a < b
            case .le: a <= b
            case .eq: a == b
            case .ge: a >= b
            case .gt: a > b
            }
        }
    }

    var name: String
    var backend: String
    var comparison: Comparison
    var value: Int
    var file = ""
    var line = 0
}

/// `monitor fail if|unless COND`: COND is alternatives separated by `||`, each a conjunction of
/// ACL names, each possibly negated with `!`.
struct MonitorCondition: Equatable, Sendable {
    struct Term: Equatable, Sendable {
        var acl: String
        var negated: Bool
    }

    var unless: Bool
    var alternatives: [[Term]]
    var file = ""
    var line = 0
}

/// The ACL names every proxy knows without declaring them (HAProxy's predefined ACLs gproxy can
/// evaluate).
enum MonitorPredefinedACL {
    static let values: [String: Bool] = ["TRUE": true, "FALSE": false]
}

/// `MonitorConfig` resolved against the engine's backends: evaluated on the control loop for each
/// monitor request, from `nbsrv` (a read of the published routing table, no lock).
struct MonitorRules: Sendable {
    /// One compiled ACL: the ORed tests of its lines.
    struct CompiledACL: Sendable {
        var tests: [(backend: Int, comparison: MonitorACL.Comparison, value: Int)]
        var constant: Bool?
    }

    struct Term: Sendable {
        var acl: CompiledACL
        var negated: Bool
    }

    struct Condition: Sendable {
        var unless: Bool
        var alternatives: [[Term]]
    }

    var conditions: [Condition]

    /// Resolves names; nil when an ACL or backend is unknown (validation refuses such configs).
    init?(_ config: MonitorConfig, backendIndex: (String) -> Int?) {
        var compiled: [String: CompiledACL] = [:]
        for (name, value) in MonitorPredefinedACL.values { compiled[name] = CompiledACL(tests: [], constant: value) }
        for acl in config.acls {
            guard let b = backendIndex(acl.backend) else { return nil }
            var c = compiled[acl.name].flatMap { $0.constant == nil ? $0 : nil } ?? CompiledACL(tests: [], constant: nil)
            c.tests.append((b, acl.comparison, acl.value))
            compiled[acl.name] = c
        }
        var conditions: [Condition] = []
        for cond in config.failConditions {
            var alternatives: [[Term]] = []
            for alt in cond.alternatives {
                var terms: [Term] = []
                for t in alt {
                    guard let acl = compiled[t.acl] else { return nil }
                    terms.append(Term(acl: acl, negated: t.negated))
                }
                alternatives.append(terms)
            }
            conditions.append(Condition(unless: cond.unless, alternatives: alternatives))
        }
        self.conditions = conditions
    }

    /// True when a `monitor fail` condition holds: the endpoint answers 503.
    func failing(nbsrv: (Int) -> Int) -> Bool {
        for c in conditions {
            let holds = c.alternatives.contains { alt in
                alt.allSatisfy { term in Self.evaluate(term.acl, nbsrv) != term.negated }
            }
            if holds != c.unless { return true }
        }
        return false
    }

    private static func evaluate(_ acl: CompiledACL, _ nbsrv: (Int) -> Int) -> Bool {
        if let constant = acl.constant { return constant }
        return acl.tests.contains { $0.comparison.holds(nbsrv($0.backend), $0.value) }
    }
}

/// A listener's monitor endpoint: its URI and rules, with `nbsrv` bound to the published routing
/// table (an atomic load, no lock).
struct MonitorEndpoint: Sendable {
    let uri: String
    let rules: MonitorRules
    let nbsrv: @Sendable (Int) -> Int

    func failing() -> Bool { rules.failing(nbsrv: nbsrv) }
}
