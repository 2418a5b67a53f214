import Splicer

/// Patroni-aware routing (`patroni primary|replica`): the backend follows what the cluster says
/// instead of waiting out rise/fall.
///
/// - Primary: at most one eligible server, the member whose API confirms it is the running leader.
///   A clear "not the leader" (a 503 with Patroni's JSON) from the writer removes it at once and cuts
///   its sessions; if two members claim leadership the higher timeline wins, never both. Timeouts,
///   refusals and garbage are ambiguous: they never remove a writer no other member replaces, so a
///   restarting Patroni API does not disconnect a healthy primary's clients.
/// - Replica: a running replica's 200 brings it in at once, a 503 with JSON takes it out at once;
///   ambiguous failures count `fall`. Optionally the leader serves reads when no replica can.
/// - While no writer is known, the writer's API stops confirming it, or answers disagree, members
///   are polled every `fast-inter`;
///   new connections wait in the backend queue meanwhile (never sent to a read-only node).
extension HealthChecker {
    /// Applies one Patroni-aware check result (checker thread); true = publish a new table.
    func patroniFinish(_ s: ServerHealth, _ r: CheckResult, now: UInt64) -> Bool {
        guard let policy = s.patroni else { return false }
        let b = s.backend
        let definitiveNo = r.status == .l7status && s.answer != nil
        var changed: Bool
        switch policy.role {
        case .primary:
            // A 200 on /primary is Patroni's own "I hold the leader key" verdict.
            let confirmed = r.status == .l7ok && (s.answer?.isRunningLeader ?? true)
            if confirmed {
                changed = confirmLeader(s, r, now: now)
            } else if definitiveNo {
                changed = refuseLeader(s, r, now: now)
            } else {
                changed = unconfirmedLeader(s, r, now: now)
            }
            let wasConverging = converging[b]
            converging[b] = writer[b] == nil || !writerConfirmed(b) || conflictPending(b)
            if converging[b] && !wasConverging { hurry(b, policy, now: now) }
        case .replica:
            changed = false
            if r.status == .l7ok && !s.state.running {
                s.state.force(running: true, health: s.state.full)
                apply(.wentUp, to: s, reason: r.logDetail, now: now)
                changed = true
            } else if r.status == .l7ok {
                _ = s.state.record(passed: true)
            } else if definitiveNo {
                if s.state.running {
                    s.state.force(running: false, health: 0)
                    apply(.wentDown, to: s, reason: r.logDetail, now: now)
                    changed = true
                }
            } else if let t = s.state.record(passed: false) {
                apply(t, to: s, reason: r.logDetail, now: now)
                changed = true
            }
            if policy.fallbackToLeader { changed = changed || s.answer?.isRunningLeader == true }
            let wasConverging = converging[b]
            converging[b] = !servers[b].contains { $0.state.usable }
            if converging[b] && !wasConverging { hurry(b, policy, now: now) }
        }
        let inter = converging[b] ? policy.fastInterMs : s.state.interval(
            inter: s.config.inter, fastinter: s.config.fastinter, downinter: s.config.downinter)
        schedule(s, at: now + UInt64(spread(inter)))
        return changed
    }

    /// The member says it is the running leader.
    private func confirmLeader(_ s: ServerHealth, _ r: CheckResult, now: UInt64) -> Bool {
        let b = s.backend
        guard let w = writer[b] else {
            promote(s, r, now: now)
            return true
        }
        if w == s.server {
            let wasRunning = s.state.running
            s.state.force(running: true, health: s.state.full)
            if !wasRunning { apply(.wentUp, to: s, reason: r.logDetail + ", Patroni leader again", now: now) }
            return !wasRunning
        }
        let current = servers[b][w]
        let theirs = s.answer?.timeline ?? 0
        let ours = current.answer?.timeline ?? 0
        if theirs > ours {
            log(.warning, "Server \(s.backendName)/\(s.name) is the Patroni leader on timeline \(theirs), "
                + "\(current.name) is on \(ours): switching the writer to \(s.name).", b)
            demote(current, reason: "reason: Patroni leader moved to \(s.name) (timeline \(theirs))", now: now)
            promote(s, r, now: now)
            return true
        }
        if reportedConflicts.insert([b, s.server]).inserted {
            log(.warning, "Servers \(s.backendName)/\(current.name) (timeline \(ours)) and \(s.name) (timeline \(theirs)) "
                + "both claim Patroni leadership: keeping \(current.name) as the only writer.", b)
        }
        return false
    }

    /// The member answered clearly that it is not the leader.
    private func refuseLeader(_ s: ServerHealth, _ r: CheckResult, now: UInt64) -> Bool {
        let b = s.backend
        reportedConflicts.remove([b, s.server])
        guard writer[b] == s.server else {
            s.state.force(running: false, health: 0)
            return false
        }
        demote(s, reason: r.logDetail, now: now)
        return true
    }

    /// A worker could not connect to the writer (or it aborted a session). A demoted primary stops
    /// its database before it comes back as a replica, so this is often the first sign of a
    /// switchover: stop sending new sessions to it at once (they wait in the queue) until its API
    /// confirms it again — which the re-check scheduled now will tell within `fast-inter`. Its
    /// established sessions are kept: nothing definitive has been said yet.
    func writerFailed(_ b: Int, server: Int, now: UInt64) -> Bool {
        guard policies[b]?.role == .primary, server >= 0, writer[b] == server else { return false }
        let s = servers[b][server]
        guard s.state.running else { return false }
        s.state.force(running: false, health: 0)
        apply(.wentDown, to: s, reason: "reason: a connection to the writer failed, new sessions wait for Patroni to confirm it",
              now: now, cutSessions: false)
        converging[b] = true
        return true
    }

    /// An ambiguous failure (timeout, refusal, garbage): `fall` counts as usual, but a writer that runs
    /// out of health only stops taking *new* sessions (they wait in the queue); its established
    /// sessions are not cut, because nothing says it stopped being the primary (patroni#2263, #3474).
    private func unconfirmedLeader(_ s: ServerHealth, _ r: CheckResult, now: UInt64) -> Bool {
        guard writer[s.backend] == s.server, s.state.record(passed: false) == .wentDown else { return false }
        apply(.wentDown, to: s, reason: r.logDetail + ", sessions kept until another leader is confirmed", now: now,
              cutSessions: false)
        return true
    }

    private func promote(_ s: ServerHealth, _ r: CheckResult, now: UInt64) {
        writer[s.backend] = s.server
        s.state.force(running: true, health: s.state.full)
        apply(.wentUp, to: s, reason: r.logDetail + ", Patroni leader" + (s.answer?.timeline.map { " on timeline \($0)" } ?? ""),
              now: now)
    }

    /// Takes the writer out and cuts its sessions (always, whatever `on-marked-down` says: a demoted
    /// primary must not keep taking writes).
    private func demote(_ s: ServerHealth, reason: String, now: UInt64) {
        if writer[s.backend] == s.server { writer[s.backend] = nil }
        s.state.force(running: false, health: 0)
        if !s.config.shutdownSessionsOnDown { s.cutSessions(reason: "D") }
        apply(.wentDown, to: s, reason: reason, now: now)
    }

    private func conflictPending(_ b: Int) -> Bool { reportedConflicts.contains { $0[0] == b } }

    /// The writer is up and its last check confirmed it (full health). A writer whose API stopped
    /// confirming (timeouts, refusals, or Patroni's 200 with `"state": "unknown"`/`"stopping"` once
    /// its Postgres died or is stopping) keeps its sessions, but the cluster may be electing another
    /// leader: every member is then polled every `fast-inter`, so the new leader is found within one
    /// fast poll of its promotion rather than at the next `inter`.
    private func writerConfirmed(_ b: Int) -> Bool {
        guard let w = writer[b] else { return false }
        let st = servers[b][w].state
        return st.running && st.health == st.full
    }

    /// Converging: ask every member again within `fast-inter`.
    private func hurry(_ b: Int, _ policy: PatroniPolicy, now: UInt64) {
        for m in servers[b] where m.probe == nil && m.checked {
            schedule(m, at: min(m.nextCheckMs, now + UInt64(policy.fastInterMs)))
        }
    }

    private func log(_ severity: SyslogSeverity, _ text: String, _ b: Int) {
        loggers[b].event(severity, text)
    }

    /// The routing states of one backend, with `fallback-to-leader` applied.
    func routingStates(backend b: Int) -> [ServerRuntimeState] {
        var states = servers[b].map(\.runtimeState)
        if let p = policies[b], p.role == .replica, p.fallbackToLeader, !states.contains(where: { $0.running }),
           let leader = servers[b].firstIndex(where: { $0.answer?.isRunningLeader == true && $0.state.admin != .maint }) {
            states[leader].running = true
        }
        return states
    }
}
