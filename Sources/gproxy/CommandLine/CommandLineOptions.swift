/// gproxy's command line: HAProxy's flags where HAProxy has one (`-f`, `-c`, `-db`, `-p`, `-q`,
/// `-V`, `-v`), plus `--demo`. Parsed by hand because HAProxy's multi-letter single-dash flags
/// (`-db`, `-vv`) do not fit a POSIX/GNU option parser.
struct CommandLineOptions: Equatable {
    var configPaths: [String] = []
    var checkOnly = false
    var quiet = false
    var verbose = false
    var pidFile: String?
    var showVersion = false
    var showHelp = false
    var demo = false
    var demoPortBase = DemoPorts.defaultBase
    /// Worker threads, overriding `nbthread` (gproxy extension, handy in tests and benchmarks).
    var threads: Int?
    /// `-sf <pid>...` / `-st <pid>...`: once listening, ask these old processes to finish (SIGUSR1) or
    /// stop (SIGTERM) — HAProxy's reload. SO_REUSEPORT lets both bind the same ports meanwhile.
    var finishPids: [Int32] = []
    var terminatePids: [Int32] = []
    /// `-W` / `-Ws`: SIGUSR2 reloads (a new process takes over with `-sf`, as HAProxy's master
    /// re-executes); `-Ws` also talks to systemd (`Type=notify`): READY=1, and MAINPID= on reload.
    var reloadOnUSR2 = false
    var systemdNotify = false
    /// `-S <socket>`: HAProxy's master CLI, which gproxy does not have (warned about at start).
    var masterSocket: String?

    struct Failure: Error, Equatable { var message: String }

    static func parse(_ args: [String]) throws(Failure) -> CommandLineOptions {
        var o = CommandLineOptions()
        var i = 0
        func value(_ flag: String) throws(Failure) -> String {
            i += 1
            guard i < args.count else { throw Failure(message: "option '\(flag)' needs a value") }
            return args[i]
        }
        while i < args.count {
            let a = args[i]
            switch a {
            case "-f": o.configPaths.append(try value(a))
            case "-c": o.checkOnly = true
            case "-q": o.quiet = true
            case "-V": o.verbose = true; o.quiet = false
            case "-db", "-d": break  // foreground is the only mode
            case "-p": o.pidFile = try value(a)
            case "-v", "-vv", "--version": o.showVersion = true
            case "-h", "--help": o.showHelp = true
            case "--demo": o.demo = true
            case "--demo-port-base":
                guard let p = UInt16(try value(a)), p > 0, p <= DemoPorts.maxBase else {
                    throw Failure(message: "--demo-port-base needs a port between 1 and \(DemoPorts.maxBase) "
                        + "(the stats page listens on <port>+\(DemoPorts.statsOffset))")
                }
                o.demoPortBase = p
            case "--threads":
                guard let n = Int(try value(a)), n > 0, n <= 64 else { throw Failure(message: "--threads needs 1..64") }
                o.threads = n
            case "-sf", "-st":
                var pids: [Int32] = []
                while i + 1 < args.count, let pid = Int32(args[i + 1]), pid > 0 {
                    pids.append(pid)
                    i += 1
                }
                if a == "-sf" { o.finishPids += pids } else { o.terminatePids += pids }
            case "-W": o.reloadOnUSR2 = true
            case "-Ws": o.reloadOnUSR2 = true; o.systemdNotify = true
            case "-S": o.masterSocket = try value(a)
            case "-D":
                throw Failure(message: "option '-D' (daemon) is not implemented by gproxy: run it in the foreground, e.g. under systemd (-Ws)")
            case "--":
                o.configPaths += args[(i + 1)...]
                i = args.count
                continue
            default:
                throw Failure(message: "unknown option '\(a)' (see --help)")
            }
            i += 1
        }
        if !o.demo && !o.showVersion && !o.showHelp && o.configPaths.isEmpty {
            throw Failure(message: "no configuration file given: use -f FILE, or --demo")
        }
        return o
    }

    static let help = """
        Usage: gproxy -f <cfgfile|cfgdir> [-f ...] [-c] [-q] [-V] [-db] [-p <pidfile>]
               gproxy --demo [--demo-port-base <port>]

        Reads HAProxy configuration files (haproxy.cfg) and relays TCP with HAProxy's semantics.
          -f <file|dir>   configuration file, or directory of *.cfg files (repeatable)
          -c              check the configuration and exit (0 = valid)
          -q              quiet: print nothing
          -V              verbose: print what is listening where
          -db             stay in the foreground (the default and only mode)
          -p <pidfile>    write the process id to this file
          -sf <pid>...    once listening, tell these old gproxy processes to finish (reload)
          -st <pid>...    once listening, tell these old gproxy processes to stop now
          -W / -Ws        SIGUSR2 reloads in place (a new process takes over with -sf);
                          -Ws also notifies systemd (Type=notify: READY=1, MAINPID= on reload)
          -v              print the version
          --demo          run the seed configuration in front of a built-in simulated
                          Patroni cluster (1 primary + 3 replicas) on 127.0.0.1
          --demo-port-base <port>  demo listen ports: <port> (read-write), <port>+1 (read-only),
                          <port>+2000 (stats); default 5000, i.e. the seed's 5000/5001/7000
          --threads <n>   worker threads (overrides nbthread)

        Reload: gproxy -c -f cfg && gproxy -f cfg -p pidfile -sf $(cat pidfile)
                or, started with -Ws (systemd): kill -USR2 <pid>
        Signals: SIGUSR1 soft stop, SIGTERM/SIGINT stop now, SIGTTOU/SIGTTIN pause/resume
        listeners, SIGHUP dump server states.
        """
}
