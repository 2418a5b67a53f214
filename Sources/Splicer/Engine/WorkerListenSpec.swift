/// One listening socket a worker accepts on: what `Engine` opened (or took over on reload) for it.
struct WorkerListenSpec {
    let fd: Int32
    /// Index into `EngineSpec.frontends`.
    let frontend: Int
    /// The bound address (the kernel's port when the configuration said 0): a resume binds it again.
    let address: SocketAddress
    /// `bind ... defer-accept`, kept for a resume.
    let deferAccept: Bool
}
