import Glibc
import Splicer

/// The control signals, as a blockable set.
struct SignalSet {
    var raw = sigset_t()
    /// `reload`: SIGUSR2 too (`-W`/`-Ws`).
    static func control(reload: Bool) -> SignalSet {
        var s = SignalSet()
        sigemptyset(&s.raw)
        for sig in [SIGUSR1, SIGTERM, SIGINT, SIGTTOU, SIGTTIN, SIGHUP] { sigaddset(&s.raw, sig) }
        if reload { sigaddset(&s.raw, SIGUSR2) }
        return s
    }
}

/// Runs on the main thread after start-up: waits for control signals and acts as HAProxy does
/// (haproxy-semantics.md §11.2), until the engine has stopped.
struct SignalLoop {
    let runtime: ProxyRuntime
    let config: GProxyConfig
    /// `-W`/`-Ws`: the command line to start again on SIGUSR2, and whether systemd is told.
    var reload: (arguments: [String], notifySystemd: Bool)?

    func run(set: SignalSet) {
        var s = set
        var timeout = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        var softStopping = false
        /// The process a SIGUSR2 started, until it takes over or fails.
        var successor: pid_t?
        while true {
            let sig = sigtimedwait(&s.raw, nil, &timeout)
            switch sig {
            case SIGUSR2:
                guard let reload, successor == nil, !softStopping else { break }
                let args = ReloadSpawner.reloadArguments(reload.arguments, replacing: getpid())
                if let pid = ReloadSpawner.spawn(args) {
                    successor = pid
                    runtime.logger.event(.notice, "Reloading: new process \(pid) started; this one finishes once it is ready.")
                } else {
                    runtime.logger.event(.alert, "Reloading failed: cannot start a new process; still serving.")
                }
            case SIGUSR1:
                // The successor is listening and asks this process to finish: it is systemd's main
                // process from now on (NotifyAccess=main accepts this from us).
                if let pid = successor, reload?.notifySystemd == true {
                    SystemdNotify.send("MAINPID=\(pid)\nREADY=1")
                }
                if !softStopping {
                    softStopping = true
                    runtime.softStop()
                }
            case SIGTERM, SIGINT:
                runtime.engine.stop()
                runtime.engine.wait()
                logStopped()
                return
            case SIGTTOU:
                runtime.engine.pauseListeners()
                for p in runtime.plan.frontendProxies { runtime.logger.event(.notice, "Paused proxy \(config.proxies[p].name).") }
            case SIGTTIN:
                runtime.engine.resumeListeners()
                for p in runtime.plan.frontendProxies { runtime.logger.event(.notice, "Resumed proxy \(config.proxies[p].name).") }
            case SIGHUP:
                dumpStates()
            default:
                break
            }
            if let pid = successor, !softStopping {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid {
                    successor = nil
                    runtime.logger.event(.alert, "Reloading failed: new process \(pid) exited with status \(status >> 8); still serving.")
                }
            }
            if softStopping && runtime.engine.isFinished {
                runtime.engine.wait()
                logStopped()
                return
            }
        }
    }

    private func logStopped() {
        let e = runtime.engine
        for (f, p) in runtime.plan.frontendProxies.enumerated() {
            let fe = e.total(e.layout.frontend(f, .sessions))
            let be = e.total(e.layout.backend(e.spec.frontends[f].backend, .sessions))
            runtime.logger.event(.warning, "Proxy \(config.proxies[p].name) stopped (cumulated conns: FE: \(fe), BE: \(be)).")
        }
    }

    /// SIGHUP does not reload (as in standalone HAProxy): it dumps server states.
    private func dumpStates() {
        let snap = runtime.snapshot()
        for p in snap.proxies where p.backend != nil {
            runtime.logger.event(.notice, "SIGHUP received, dumping servers states for proxy \(p.name).")
            for s in p.servers {
                runtime.logger.event(.notice, "SIGHUP: Server \(p.name)/\(s.name) is \(s.status). Conn: \(s.counters.scur) act, "
                    + "\(s.counters.qcur ?? 0) pend, \(s.counters.stot) tot.")
            }
        }
    }
}
