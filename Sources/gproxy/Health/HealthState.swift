/// HAProxy 2.6's health-check state machine for one server (haproxy-semantics.md §3), as a plain
/// value so it can be tested check by check.
///
/// `health` runs from 0 to rise+fall-1; the server is UP while running. A failed check lowers it by
/// one and, once below `rise`, drops it to 0 and the server DOWN; a passed check raises it by one
/// and, once at `rise`, lifts it to the top and the server UP. By default a checked server starts UP
/// with health = rise ("UP 1/fall"), so its first failure marks it DOWN at once.
struct HealthState: Equatable {
    enum Transition: Equatable { case wentUp, wentDown }

    let rise: Int
    let fall: Int
    let checked: Bool
    private(set) var health: Int
    private(set) var running: Bool
    var admin: ServerAdminState = .ready

    var full: Int { rise + fall - 1 }

    init(rise: Int, fall: Int, checked: Bool, initState: InitState = .haproxyDefault) {
        self.rise = max(1, rise)
        self.fall = max(1, fall)
        self.checked = checked
        switch initState {
        case .haproxyDefault, .up:
            health = self.rise
            running = true
        case .fullyUp:
            health = self.rise + self.fall - 1
            running = true
        case .down:
            health = self.rise - 1
            running = false
        case .fullyDown:
            health = 0
            running = false
        }
        if !checked {
            health = self.rise + self.fall - 1
            running = true
        }
    }

    /// Applies one check result. `definitive` (Patroni-aware mode: the node said clearly it is not
    /// what we want) skips the fall countdown.
    mutating func record(passed: Bool, definitive: Bool = false) -> Transition? {
        if passed {
            guard health < full else { return nil }
            health += 1
            if health >= rise {
                health = full
                if !running {
                    running = true
                    return .wentUp
                }
            }
            return nil
        }
        guard health > 0 else { return nil }
        health = definitive ? 0 : health - 1
        if health < rise {
            health = 0
            if running {
                running = false
                return .wentDown
            }
        }
        return nil
    }

    /// Forces the state (runtime `set server health`, leaving maintenance).
    mutating func force(running up: Bool, health h: Int) {
        running = up
        health = min(max(0, h), full)
    }

    /// May the server take traffic (checks say UP and not in maintenance)?
    var usable: Bool { running && admin != .maint }

    /// HAProxy's stats status string.
    var statusText: String {
        if admin == .maint { return "MAINT" }
        if !checked { return admin == .drain ? "DRAIN" : "no check" }
        if running {
            let word = admin == .drain ? "DRAIN" : "UP"
            return health == full ? word : "\(word) \(health - rise + 1)/\(fall)"
        }
        return health == 0 ? "DOWN" : "DOWN \(health)/\(rise)"
    }

    /// The interval before the next check (HAProxy's srv_getinter).
    func interval(inter: Int, fastinter: Int?, downinter: Int?) -> Int {
        if health == full { return inter }
        if health == 0 && !running { return downinter ?? inter }
        return fastinter ?? inter
    }

    /// The `status: a/b X` text of `option log-health-checks` lines.
    var progressText: String {
        running ? "\(health - rise + 1)/\(fall) UP" : "\(health)/\(rise) DOWN"
    }
}
