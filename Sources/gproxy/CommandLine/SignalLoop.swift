import Glibc
import Splicer

/// The control signals, as a blockable set.
struct SignalSet {
    var raw = sigset_t()
    static var control: SignalSet {
        var s = SignalSet()
        sigemptyset(&s.raw)
        for sig in [SIGUSR1, SIGTERM, SIGINT, SIGTTOU, SIGTTIN, SIGHUP] { sigaddset(&s.raw, sig) }
        return s
    }
}

/// Runs on the main thread after start-up: waits for control signals and acts as HAProxy does
/// (haproxy-semantics.md §11.2), until the engine has stopped.
struct SignalLoop {
    let runtime: ProxyRuntime
    let config: GProxyConfig

    func run(set: SignalSet) {
        var s = set
        var timeout = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        var softStopping = false
        while true {
            let sig = sigtimedwait(&s.raw, nil, &timeout)
            switch sig {
            case SIGUSR1:
                if !softStopping {
                    softStopping = true
                    runtime.engine.softStop()
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
