/// Keyword tables: what HAProxy 2.6 knows but gproxy deliberately does not implement.
///
/// The rule is "never silently ignore": a keyword HAProxy would accept but gproxy cannot honour is a
/// fatal `keyword 'X' is not implemented by gproxy`, so a user's config never half-works. Anything in
/// neither these tables nor the parsers is an `unknown keyword`, worded like HAProxy's.
enum ConfigKeywordTables {
    /// Section keywords gproxy parses.
    static let implementedSections: Set<String> = ["global", "defaults", "frontend", "backend", "listen"]

    /// Other section keywords registered by HAProxy 2.6 (`REGISTER_CONFIG_SECTION`).
    static let otherSections: Set<String> = [
        "userlist", "peers", "mailers", "resolvers", "namespace_list", "program", "http-errors", "ring",
        "log-forward", "cache", "fcgi-app",
    ]

    /// Proxy-section keywords HAProxy 2.6 accepts and gproxy refuses.
    static let proxyNotImplemented: Set<String> = [
        "backlog", "bind-process", "capture", "clitcpka-cnt", "clitcpka-idle", "clitcpka-intvl",
        "compression", "cookie", "declare", "description", "disabled", "dispatch", "dynamic-cookie-key",
        "email-alert", "enabled", "errorfile", "errorfiles", "errorloc", "errorloc302", "errorloc303",
        "external-check", "filter", "force-persist", "fullconn", "grace", "hash-balance-factor", "hash-type",
        "http-after-response", "http-error", "http-request", "http-response", "http-reuse", "http-send-name-header",
        "id", "ignore-persist", "log-format", "log-format-sd", "log-tag",
        "max-keep-alive-queue", "max-session-srv-conns", "persist", "rate-limit",
        "redirect", "server-template", "source", "srvtcpka-cnt", "srvtcpka-idle",
        "srvtcpka-intvl", "stick", "stick-table", "tcp-check", "tcp-request", "tcp-response", "unique-id-format",
        "unique-id-header", "use-fcgi-app", "use-server", "error-log-format",
    ]

    /// `option` names HAProxy 2.6 accepts and gproxy refuses.
    static let optionNotImplemented: Set<String> = [
        "abortonclose", "accept-invalid-http-request", "accept-invalid-http-response", "checkcache",
        "clitcpka", "contstats", "disable-h2-upgrade", "dontlog-normal", "dontlognull", "external-check",
        "forwardfor", "h1-case-adjust-bogus-client", "h1-case-adjust-bogus-server", "http-buffer-request",
        "http-ignore-probes", "http-keep-alive", "http-no-delay", "http-pretend-keepalive", "http-restrict-req-hdr-names",
        "http-server-close", "http-use-proxy-header", "httpclose", "http_proxy", "idle-close-on-response",
        "independent-streams", "ldap-check", "log-separate-errors", "logasap", "mysql-check", "nolinger",
        "originalto", "persist", "pgsql-check", "prefer-last-server", "redis-check", "smtpchk", "socket-stats",
        "spop-check", "srvtcpka", "ssl-hello-chk", "tcp-check", "tcp-smart-accept", "tcp-smart-connect", "tcpka",
        "transparent", "httpslog", "forceclose",
    ]

    /// Options gproxy implements (for the `unknown option` decision).
    static let optionImplemented: Set<String> = [
        "redispatch", "splice-auto", "splice-request", "splice-response", "tcplog", "httplog",
        "log-health-checks", "allbackups", "httpchk",
    ]

    /// `server`/`default-server` options HAProxy 2.6 accepts and gproxy refuses.
    static let serverNotImplemented: Set<String> = [
        "agent-addr", "agent-check", "agent-inter", "agent-port", "agent-send", "allow-0rtt", "alpn", "ca-file",
        "check-alpn", "check-proto", "check-send-proxy", "check-sni", "check-ssl", "check-via-socks4", "ciphers",
        "ciphersuites", "cookie", "crl-file", "crt", "error-limit", "force-sslv3", "force-tlsv10", "force-tlsv11",
        "force-tlsv12", "force-tlsv13", "init-addr", "log-proto", "max-reuse", "minconn", "namespace", "no-agent-check",
        "no-send-proxy", "no-ssl", "no-ssl-reuse", "no-tls-tickets", "no-verifyhost", "npn", "observe", "on-error",
        "pool-low-conn", "pool-max-conn", "pool-purge-delay", "proto", "proxy-v2-options", "redir", "resolve-net",
        "resolve-opts", "resolve-prefer", "resolvers", "send-proxy", "send-proxy-v2", "send-proxy-v2-ssl",
        "send-proxy-v2-ssl-cn", "slowstart", "sni", "socks4", "source", "ssl", "ssl-max-ver", "ssl-min-ver",
        "ssl-reuse", "stick", "tcp-ut", "tfo", "tls-tickets", "track", "verify", "verifyhost", "ws", "usesrc",
        "non-stick", "no-tfo", "set-proxy-v2-tlv-fmt",
    ]

    /// `bind` options HAProxy 2.6 accepts and gproxy refuses.
    static let bindNotImplemented: Set<String> = [
        "accept-netscaler-cip", "accept-proxy", "allow-0rtt", "alpn", "backlog", "ca-file", "ciphers", "crt",
        "crt-list", "expose-fd", "generate-certificates", "gid", "group", "id", "interface",
        "level", "maxconn", "mode", "mss", "name", "namespace", "nice", "no-ca-names", "npn", "process", "proto",
        "severity-output", "ssl", "ssl-max-ver", "ssl-min-ver", "strict-sni", "tcp-ut", "tfo", "thread",
        "tls-ticket-keys", "transparent", "uid", "user", "v4v6", "v6only", "verify", "quic-cc-algo",
    ]

    /// Global keywords HAProxy 2.6 accepts and gproxy refuses.
    static let globalNotImplemented: Set<String> = [
        "busy-polling", "ca-base", "chroot", "cpu-map", "crt-base", "description", "expose-experimental-directives",
        "external-check", "gid", "group", "h1-case-adjust", "h1-case-adjust-file", "hard-stop-after", "insecure-fork-wanted",
        "issuers-chain-path", "localpeer", "log-send-hostname", "log-tag", "lua-load", "lua-load-per-thread",
        "lua-prepend-path", "master-worker", "maxcompcpuusage", "maxcomprate", "maxconnrate", "maxpipes",
        "maxsessrate", "maxsslconn", "maxsslrate", "maxzlibmem", "mworker-max-reloads", "nbproc", "noepoll",
        "noevports", "nogetaddrinfo", "nokqueue", "nopoll", "noreuseport", "nosplice", "numa-cpu-mapping",
        "presetenv", "profiling.memory", "profiling.tasks", "quiet", "resetenv",
        "set-dumpable", "setenv", "ssl-default-bind-ciphers", "ssl-default-bind-ciphersuites",
        "ssl-default-bind-options", "ssl-default-server-ciphers", "ssl-default-server-ciphersuites",
        "ssl-default-server-options", "ssl-dh-param-file", "ssl-engine", "ssl-mode-async", "ssl-server-verify",
        "strict-limits", "thread-group", "thread-groups", "uid", "ulimit-n", "unix-bind", "unsetenv", "user",
        "zero-warning", "default-path", "fd-hard-limit", "httpclient.resolvers.id", "pp2-never-send-local",
        "ssl-load-extra-files", "ssl-propquery", "ssl-provider", "stats-file", "anonkey", "cluster-secret", "grace", "log-format", "51degrees-data-file", "deviceatlas-json-file", "wurfl-data-file",
    ]

    /// `stats` sub-keywords gproxy refuses.
    static let statsNotImplemented: Set<String> = [
        "scope", "show-desc", "show-legends", "show-node", "show-modules", "http-request", "bind-process",
    ]

    /// `balance` algorithms HAProxy knows but gproxy does not implement.
    static let balanceNotImplemented: Set<String> = [
        "uri", "url_param", "hdr", "random", "rdp-cookie", "hash",
    ]

    /// HAProxy's syslog facility names (`log_facilities[]`).
    static let logFacilities: [String] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2", "ftp", "ntp",
        "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ]

    /// HAProxy's log level names (`log_levels[]`).
    static let logLevels: [String] = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
}
