import CEpoll
import Glibc
import Splicer

/// The runtime API on a UNIX socket (`stats socket PATH [mode 600]`), on the control loop.
///
/// - Every line a client sends is run, each `;`-separated command in turn (HAProxy's
///   non-interactive mode): the connection closes once no complete line is left, unless the client
///   turned `prompt` mode on.
/// - Replies stream: the next command runs only when what the client has not read yet is below
///   `highWaterBytes`, and no input is read meanwhile, so a client asking for gigabytes holds at
///   most one command's reply and one line of input in memory.
/// - The socket file is removed on exit only while it is still ours: after a reload it belongs to
///   the successor, which bound the same path.
final class RuntimeSocketServer: @unchecked Sendable {
    /// Idle time after which a client is disconnected (HAProxy's `stats timeout` default, 10 s).
    static let defaultIdleTimeoutMs = 10_000
    /// Longest accepted command line; a longer one closes the connection.
    static let maxLineBytes = 64 * 1024
    static let maxClients = 64
    /// Unsent reply bytes above which no further command runs until the client reads.
    static let highWaterBytes = 64 * 1024

    let path: String
    private let mode: UInt32?
    let cli: RuntimeCLI
    let idleTimeoutMs: Int
    let control: ControlLoop
    var loop: EventLoop { control.loop }
    // Loop thread only.
    private var listener: LoopListener?
    /// The socket file we bound, to remove it only while it is still ours.
    private var boundFile: (dev: UInt64, ino: UInt64)?
    var clients = 0
    /// Soft stop: clients finish the line they sent, then are closed.
    private(set) var stopping = false
    var readBuffer = [UInt8](repeating: 0, count: 16 * 1024)

    init(path: String, mode: UInt32? = nil, level: String = "admin", admin: any RuntimeAdmin, control: ControlLoop,
         idleTimeoutMs: Int = RuntimeSocketServer.defaultIdleTimeoutMs) {
        self.path = path
        self.mode = mode
        self.cli = RuntimeCLI(admin: admin, level: level)
        self.idleTimeoutMs = max(1, idleTimeoutMs)
        self.control = control
    }

    convenience init(config: StatsSocketConfig, admin: any RuntimeAdmin, control: ControlLoop) {
        self.init(path: config.path, mode: config.mode, level: config.level, admin: admin, control: control)
    }

    /// Unlinks a stale socket file, binds, applies the mode and starts accepting.
    func start() throws {
        try control.sync { [self] in
            guard listener == nil else { return }
            let fd = try SystemCallError.named("bind/listen \(path)") { () throws(Errno) in
                try UnixSocketFile.listen(path: path, mode: mode, backlog: 16)
            }
            var st = stat()
            if stat(path, &st) == 0 { boundFile = (UInt64(st.st_dev), UInt64(st.st_ino)) }
            let l = LoopListener(fd: fd, loop: loop) { [unowned self] c in
                if clients >= Self.maxClients { _ = cepoll_close(c) } else { RuntimeConnection.start(fd: c, server: self) }
            }
            listener = l
            do throws(Errno) {
                try l.register()
            } catch {
                closeListener()
                throw SystemCallError("epoll_ctl \(path)", error)
            }
            l.acceptAll()
        }
    }

    /// Stops accepting (soft stop or exit); clients finish their current line. Removes the socket
    /// file if it is still the one this process bound.
    func stop() {
        control.sync { [self] in
            stopping = true
            closeListener()
        }
    }

    private func closeListener() {
        listener?.close()
        listener = nil
        if let file = boundFile {
            var st = stat()
            if stat(path, &st) == 0, UInt64(st.st_dev) == file.dev, UInt64(st.st_ino) == file.ino { unlink(path) }
        }
        boundFile = nil
    }
}

/// One runtime API client: lines in, replies out, one command at a time.
private final class RuntimeConnection: EventHandler {
    private let fd: Int32
    private unowned let server: RuntimeSocketServer
    private var token: LoopToken?
    private var session = RuntimeCLI.Session()
    private var input: [UInt8] = []
    private var inputEnded = false
    /// Commands of the line being run, next first.
    private var commands: ArraySlice<RuntimeCommand> = []
    private var output: [UInt8] = []
    private var sent = 0
    private var idleTimer: UInt64?
    /// Non-interactive mode: a line has run, so the connection closes once no complete line is left.
    private var ranALine = false

    private init(fd: Int32, server: RuntimeSocketServer) {
        self.fd = fd
        self.server = server
    }

    static func start(fd: Int32, server: RuntimeSocketServer) {
        let c = RuntimeConnection(fd: fd, server: server)
        let ev = CEPOLL_EPOLLIN | CEPOLL_EPOLLOUT | CEPOLL_EPOLLRDHUP | CEPOLL_EPOLLET
        guard let token = try? server.loop.register(fd, events: ev, c) else {
            _ = cepoll_close(fd)
            return
        }
        c.token = token
        server.clients += 1
        c.touch()
        c.pump()
    }

    override func handle(events: UInt32, tag _: UInt32) { pump() }

    /// Moves everything forward as far as the socket allows: flush, run, read, repeat.
    private func pump() {
        while token != nil {
            guard flush() else { return }
            if output.count - sent >= RuntimeSocketServer.highWaterBytes { return }  // wait for EPOLLOUT
            if let cmd = commands.popFirst() {
                output += Array(server.cli.run(cmd, session: &session).utf8)
                if session.finished { commands = [] }
                if commands.isEmpty { lineDone() }
                continue
            }
            if session.finished || (server.stopping && ranALine) {
                if sent == output.count { close() }
                return
            }
            if takeLine() { continue }
            if !session.interactive && ranALine {
                if sent == output.count { close() }
                return
            }
            if inputEnded {
                // A last command without a newline is still run, as HAProxy does.
                if !input.isEmpty {
                    startLine(input[...])
                    input = []
                    continue
                }
                if sent == output.count { close() }
                return
            }
            guard readInput() else { return }
        }
    }

    /// Writes pending output; false when the connection was closed.
    private func flush() -> Bool {
        while sent < output.count {
            let w = IOResult(output.withUnsafeBytes { cepoll_write(fd, $0.baseAddress! + sent, UInt(output.count - sent)) })
            if case .done(let n) = w {
                sent += n
                touch()
            } else if w == .interrupted {
                continue
            } else if w == .wouldBlock {
                break
            } else {
                close()
                return false
            }
        }
        if sent == output.count {
            output.removeAll(keepingCapacity: output.capacity <= RuntimeSocketServer.highWaterBytes * 2)
            sent = 0
        } else if sent > RuntimeSocketServer.highWaterBytes {
            output.removeFirst(sent)
            sent = 0
        }
        return true
    }

    /// Starts the next complete line of input, if any.
    private func takeLine() -> Bool {
        guard let nl = input.firstIndex(of: 0x0A) else { return false }
        let line = input[..<nl]
        startLine(line)
        input.removeFirst(nl + 1)
        return true
    }

    private func startLine(_ line: ArraySlice<UInt8>) {
        commands = RuntimeCommand.parseLine(String(decoding: line, as: UTF8.self))[...]
        if commands.isEmpty { lineDone() }
    }

    /// The line's last command ran: the prompt in interactive mode, else the line counts as served.
    private func lineDone() {
        if session.finished { return }
        if session.interactive {
            output += Array("> ".utf8)
        } else {
            ranALine = true
        }
    }

    /// Reads what is available; false when the caller should wait for the next event.
    private func readInput() -> Bool {
        switch IOResult(server.readBuffer.withUnsafeMutableBytes { cepoll_read(fd, $0.baseAddress, UInt($0.count)) }) {
        case .done(let n):
            input.append(contentsOf: server.readBuffer[0..<n])
            touch()
            if input.count > RuntimeSocketServer.maxLineBytes && !input.contains(0x0A) {
                close()
                return false
            }
            return true
        case .end:
            inputEnded = true
            return true
        case .interrupted:
            return true
        case .wouldBlock:
            return false
        case .failed:
            close()
            return false
        }
    }

    /// (Re)arms the idle timeout.
    private func touch() {
        if let idleTimer { server.loop.cancel(timer: idleTimer) }
        idleTimer = server.loop.schedule(afterMs: server.idleTimeoutMs) { [weak self] in
            self?.idleTimer = nil
            self?.close()
        }
    }

    private func close() {
        guard let token else { return }
        if let idleTimer { server.loop.cancel(timer: idleTimer) }
        idleTimer = nil
        server.loop.deregister(fd, token)
        self.token = nil
        server.clients -= 1
        // Unread input would turn the close into a reset that destroys unread replies.
        _ = cepoll_shutdown(fd, Int32(SHUT_WR))
        _ = cepoll_close(fd)
    }
}
