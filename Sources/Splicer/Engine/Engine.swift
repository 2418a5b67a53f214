import CEpoll
import Glibc
import Synchronization

/// The relay engine: binds every frontend's addresses once per worker (SO_REUSEPORT, so the kernel
/// spreads connections with no shared accept lock), runs the workers, and is the one place other
/// threads use to publish routing tables and send control messages.
public final class Engine: @unchecked Sendable {
    public let spec: EngineSpec
    public let publisher: RoutePublisher
    public let backends: [BackendShared]
    public let frontendSessions: [LiveCount]
    public let processSessions: LiveCount
    public let layout: CounterLayout
    public let counterBlocks: [CounterBlock]
    /// Each worker's event loop and mailbox, made here so that messages posted before `start`
    /// wait in the mailbox.
    let loops: [EventLoop]
    let inboxes: [LoopMailbox<WorkerMessage>]
    /// Workers waiting for the process limit, and for each frontend's limit, to free a slot.
    let processWaiters = WaitingWorkers()
    let frontendWaiters: [WaitingWorkers]
    /// The addresses each frontend actually listens on (ports chosen by the kernel for port 0).
    public private(set) var boundAddresses: [[SocketAddress]] = []
    /// Receives finished sessions of frontends with `logSessions` (called on worker threads).
    public var sessionLogger: (@Sendable (SessionRecord) -> Void)?
    /// Told (on a worker thread) when connecting to a server fails or it aborts a session: a hint
    /// that the cluster may be changing, which the Patroni-aware checker acts on at once.
    public var serverTroubleHandler: (@Sendable (_ backend: Int, _ server: Int) -> Void)?
    /// Tests only: told (on a worker thread) at each `AcceptCheckpoint`. Set before `start`.
    var acceptProbe: (@Sendable (AcceptCheckpoint) -> Void)?

    private var workers: [Worker] = []
    private var threads: [pthread_t] = []
    private let finished = Atomic<Int>(0)
    private var listenFds: [[WorkerListenSpec]] = []
    let listenerTable = ListenerTable()

    /// `inherited`: listening sockets handed over by the process this one replaces; binds that
    /// match take them instead of binding anew.
    public init(spec: EngineSpec, initialTable: RoutingTable? = nil,
                inherited: InheritedListeners = InheritedListeners()) throws(Errno) {
        self.spec = spec
        publisher = RoutePublisher(initialTable ?? RoutingTable.allUp(spec: spec))
        backends = spec.backends.enumerated().map { BackendShared(index: $0.offset, spec: $0.element) }
        frontendSessions = spec.frontends.map { LiveCount(limit: $0.maxconn) }
        frontendWaiters = spec.frontends.map { _ in WaitingWorkers() }
        processSessions = LiveCount(limit: spec.globalMaxconn)
        layout = CounterLayout(spec: spec)
        counterBlocks = (0..<spec.workers).map { _ in CounterBlock(count: CounterLayout(spec: spec).total) }
        var loops: [EventLoop] = []
        for _ in 0..<spec.workers { loops.append(try EventLoop(eventCapacity: 256)) }
        self.loops = loops
        inboxes = loops.map { LoopMailbox(loop: $0) }
        try bindListeners(inherited)
        let inboxes = self.inboxes
        for b in backends {
            b.deliver = { ticket in inboxes[ticket.worker].post(.grant(ticket)) }
        }
    }

    private func bindListeners(_ inherited: InheritedListeners) throws(Errno) {
        listenFds = Array(repeating: [], count: spec.workers)
        var opened: [Int32] = []
        do {
            for (f, fe) in spec.frontends.enumerated() {
                var bound: [SocketAddress] = []
                let backlog = listenBacklog(frontend: f)
                for (b, addr) in fe.binds.enumerated() {
                    var actual = addr
                    let deferAccept = fe.defersAccept(b)
                    for w in 0..<spec.workers {
                        let fd: Int32
                        if let handed = inherited.take(addr) {
                            fd = handed
                            opened.append(fd)
                            try Socket.setDeferAccept(fd, deferAccept)
                        } else {
                            fd = try Socket.listen(on: actual, reusePort: true, backlog: backlog, deferAccept: deferAccept)
                            opened.append(fd)
                        }
                        if w == 0, let local = Socket.localAddress(of: fd) { actual = local }
                        listenFds[w].append(WorkerListenSpec(fd: fd, frontend: f, address: actual, deferAccept: deferAccept))
                    }
                    // The old process ran more workers: every socket in the group must keep an
                    // acceptor, or the connections the kernel hashes to it would wait forever.
                    var extra = 0
                    while let fd = inherited.take(addr) {
                        opened.append(fd)
                        try Socket.setDeferAccept(fd, deferAccept)
                        listenFds[extra % spec.workers].append(WorkerListenSpec(fd: fd, frontend: f, address: actual,
                                                                                deferAccept: deferAccept))
                        extra += 1
                    }
                    bound.append(actual)
                }
                boundAddresses.append(bound)
            }
            let fds = listenFds.map { $0.map(\.fd) }
            listenerTable.withLock { $0 = fds }
        } catch {
            for fd in opened { Socket.close(fd) }
            throw error
        }
    }

    /// The accept backlog of a frontend's listening sockets: room for its maxconn (the kernel caps
    /// it at net.core.somaxconn). The same on a first bind and on a reopen after a pause.
    func listenBacklog(frontend f: Int) -> Int32 {
        Int32(clamping: max(1024, spec.frontends[f].maxconn, spec.globalMaxconn))
    }

    /// Duplicates of every listening socket still open (close-on-exec), for the process that
    /// replaces this one on reload. The caller closes them.
    public func duplicateListeners() -> [Int32] {
        listenerTable.withLock { table in
            table.joined().filter { $0 >= 0 }.compactMap { fd -> Int32? in
                let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
                return copy >= 0 ? copy : nil
            }
        }
    }

    /// Starts one thread per worker, named `gproxy-w<N>`.
    public func start() throws(Errno) {
        for w in 0..<spec.workers {
            workers.append(try Worker(id: w, engine: self, listenFds: listenFds[w]))
        }
        for w in workers {
            let worker = w
            let box = UncheckedBox(worker)
            threads.append(NamedThread.start(name: "gproxy-w\(w.id)") { [self] in
                box.value.run()
                finished.add(1, ordering: .sequentiallyConsistent)
            })
        }
    }

    /// Publishes a new routing table: workers see it on their next loop turn, are woken so that
    /// shutdown-sessions acts at once, and queued sessions are served if servers came up.
    public func publish(_ table: RoutingTable) {
        publisher.publish(table)
        for inbox in inboxes { inbox.post(.tableChanged) }
        for (i, b) in backends.enumerated() { b.dispatch(table.backends[i]) }
    }

    /// SIGUSR1: stop listening now, exit once every session has ended.
    public func softStop() { for i in inboxes { i.post(.softStop) } }
    /// SIGTERM/SIGINT: close everything now.
    public func stop() { for i in inboxes { i.post(.stop) } }
    /// SIGTTOU / SIGTTIN.
    public func pauseListeners() { for i in inboxes { i.post(.pauseListeners) } }
    public func resumeListeners() { for i in inboxes { i.post(.resumeListeners) } }

    /// Blocks until every worker has exited.
    public func wait() {
        for t in threads { NamedThread.join(t) }
        threads.removeAll()
    }

    public var isFinished: Bool { finished.load(ordering: .sequentiallyConsistent) == spec.workers }

    /// A unit of `waiters`' limit was freed: every worker that found it full tries accepting again.
    /// Two sets, not a variadic list: this runs on every session end and every empty accept, and a
    /// variadic argument is an array allocation.
    func wake(_ a: WaitingWorkers, _ b: WaitingWorkers? = nil) {
        var mask: UInt64 = a.any ? a.takeAll() : 0
        if let b, b.any { mask |= b.takeAll() }
        guard mask != 0 else { return }
        for w in 0..<spec.workers where mask & (UInt64(1) << UInt64(w % 64)) != 0 { inboxes[w].post(.retryAccept) }
    }

    /// Sum of one counter over every worker.
    public func total(_ index: Int) -> UInt64 {
        var t: UInt64 = 0
        for b in counterBlocks { t &+= b.load(index) }
        return t
    }
}

/// Carries a non-Sendable value into the thread that will own it from then on.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
