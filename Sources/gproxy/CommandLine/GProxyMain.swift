import CEpoll
import Foundation
import Glibc
import Splicer

/// What `gproxy` does for each command line: check a config, run it, or run the demo.
enum GProxyMain {
    static func run(_ arguments: [String]) -> Int32 {
        let options: CommandLineOptions
        do {
            options = try CommandLineOptions.parse(Array(arguments.dropFirst()))
        } catch {
            LogSink.write(2, "gproxy: \(error.message)\n")
            return 1
        }
        if options.showHelp {
            print(CommandLineOptions.help)
            return 0
        }
        if options.showVersion {
            print("gproxy version \(GProxyVersion.number) (HAProxy 2.6 configuration compatible)")
            return 0
        }
        var cluster: SimulatedCluster?
        var paths = options.configPaths
        // The demo's generated config lives as long as the demo (its banner names the file).
        var demoConfigPath: String?
        defer { if let demoConfigPath { unlink(demoConfigPath) } }
        if options.demo {
            do {
                let c = try SimulatedCluster()
                cluster = c
                let path = NSTemporaryDirectory() + "gproxy-demo-\(getpid()).cfg"
                demoConfigPath = path
                try demoConfigText(cluster: c, portBase: options.demoPortBase).write(toFile: path, atomically: true, encoding: .utf8)
                paths = [path]
            } catch {
                LogSink.write(2, "gproxy: cannot start the demo cluster: \(error)\n")
                return 1
            }
        }
        defer { cluster?.stop() }

        let config: GProxyConfig
        do {
            config = try ConfigLoader.load(paths: paths, environment: ProcessInfo.processInfo.environment)
        } catch {
            if !options.quiet {
                for e in error.errors { LogSink.write(2, "\(e)\n") }
                LogSink.write(2, "Fatal errors found in configuration.\n")
            }
            return 1
        }
        // At start as under -c (HAProxy prints its [WARNING]s either way): what gproxy does not act
        // on must not pass silently just because nobody ran a check first.
        if !options.quiet {
            for w in config.warnings { LogSink.write(2, "\(w.file):\(w.line): warning: \(w.message)\n") }
        }
        if options.checkOnly {
            if !options.quiet {
                if !config.warnings.isEmpty { print("Warnings were found.") }
                print("Configuration file is valid")
            }
            return 0
        }
        return serve(config, options: options, demo: cluster, configPath: paths.first ?? "",
                     arguments: Array(arguments.dropFirst()))
    }

    private static func serve(_ config: GProxyConfig, options: CommandLineOptions, demo: SimulatedCluster?,
                              configPath: String, arguments: [String]) -> Int32 {
        _ = cepoll_ignore_sigpipe()
        // Block the control signals in every thread; this thread takes them with sigtimedwait.
        var set = SignalSet.control(reload: options.reloadOnUSR2)
        pthread_sigmask(SIG_BLOCK, &set.raw, nil)
        // Reload: take the old processes' listening sockets, so no queued connection is reset, and
        // their servers' state, so no server is assumed UP again.
        let inherited = InheritedListeners()
        var carriedState = ""
        let handoverDirectory = HandoverDirectory.current()
        for pid in options.finishPids + options.terminatePids {
            let legacy = ReloadHandover.receive(from: pid, directory: handoverDirectory)
            if let problem = legacy.problem, !options.quiet { LogSink.write(2, "gproxy: \(problem); binding anew.\n") }
            for fd in legacy.listeners { inherited.add(fd) }
            if carriedState.isEmpty { carriedState = legacy.serverState }
        }
        if options.verbose && inherited.count > 0 {
            print("took over \(inherited.count) listening socket(s) from the old process")
        }
        if let maxconn = config.global.maxconn {
            let workers = options.threads ?? config.global.nbthread ?? max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
            let needed = EngineBuilder.requiredFileDescriptors(config: config, workers: workers, maxconn: maxconn)
            if case .tooLow(let limit) = FileDescriptorLimit.raise(to: needed) {
                if !options.quiet {
                    LogSink.write(2, "gproxy: Cannot raise FD limit to \(needed), limit is \(limit). Global maxconn "
                        + "\(maxconn) needs 2 per connection plus listeners and checks: raise the hard limit "
                        + "(ulimit -Hn, systemd LimitNOFILE=) or lower maxconn.\n")
                }
                return 1
            }
        }
        let runtime: ProxyRuntime
        do {
            runtime = try ProxyRuntime(config: config, quiet: options.quiet, workers: options.threads,
                                       inherited: inherited, carriedServerState: carriedState)
            try runtime.start()
        } catch let e as ConfigErrors {
            if !options.quiet { for d in e.errors { LogSink.write(2, "\(d)\n") } }
            return 1
        } catch {
            if !options.quiet { LogSink.write(2, "gproxy: cannot start: \(error)\n") }
            return 1
        }
        if config.global.daemon && !options.quiet {
            LogSink.write(2, "gproxy: 'daemon' is not implemented: staying in the foreground (run under systemd).\n")
        }
        runtime.startHandover(handoverDirectory)
        // The pidfile names this process before the old ones are told to go, so an old one leaving
        // (it removes the file only while the file names it) never removes ours.
        let pidFile = options.pidFile ?? config.global.pidfile
        if let pidFile { try? "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8) }
        defer {
            if let pidFile, (try? String(contentsOfFile: pidFile, encoding: .utf8)) == "\(getpid())\n" { unlink(pidFile) }
        }
        // Reload: we listen now (on the old sockets or SO_REUSEPORT), so the old processes can let go.
        for pid in options.finishPids { kill(pid, SIGUSR1) }
        for pid in options.terminatePids { kill(pid, SIGTERM) }
        if let demo {
            print(demoBannerText(cluster: demo, portBase: options.demoPortBase, configPath: configPath))
        } else if options.verbose {
            for (name, ports) in runtime.frontendPorts.sorted(by: { $0.key < $1.key }) {
                print("\(name): listening on port(s) \(ports.map(String.init).joined(separator: ", "))")
            }
        }
        if options.masterSocket != nil && !options.quiet {
            LogSink.write(2, "gproxy: '-S' (HAProxy's master CLI) is not implemented: use 'stats socket' in global.\n")
        }
        // A reload's successor is announced by the process it replaces (systemd's NotifyAccess=main).
        if options.systemdNotify && options.finishPids.isEmpty && options.terminatePids.isEmpty {
            SystemdNotify.send("READY=1\nMAINPID=\(getpid())")
        }
        fflush(nil)
        var signals = SignalLoop(runtime: runtime, config: config)
        if options.reloadOnUSR2 { signals.reload = (arguments, options.systemdNotify) }
        signals.run(set: set)
        runtime.stopAuxiliaries()
        runtime.engine.wait()
        return 0
    }
}
