/// How server host names become addresses while the configuration is read: the system resolver
/// (getaddrinfo) by default, a stand-in in tests.
struct HostResolver: Sendable {
    let resolve: @Sendable (String) -> String?

    init(_ resolve: @escaping @Sendable (String) -> String?) { self.resolve = resolve }

    static let system = HostResolver { EngineBuilder.resolve($0) }
}
