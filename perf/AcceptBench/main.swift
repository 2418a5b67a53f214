// Accept-path benchmark: N worker threads, each with its own epoll loop, accepting from
//   reuseport:  one SO_REUSEPORT listening socket per worker (what gproxy does), or
//   exclusive:  one shared listening socket registered in every worker with EPOLLEXCLUSIVE.
// Client threads connect and close as fast as they can for a fixed time; we report accepted
// connections per second and the workers' CPU per accept (CLOCK_THREAD_CPUTIME_ID).
//
//   swift run -c release AcceptBench [seconds] [workers] [clients]
import CEpoll
import Glibc
import Splicer
import Synchronization

let seconds = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 5 : 5
let workers = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 2 : 2
let clients = CommandLine.arguments.count > 3 ? Int(CommandLine.arguments[3]) ?? 4 : 4

final class Totals: Sendable {
    let accepted = Atomic<Int>(0)
    let cpuNs = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
}

func run(mode: String) -> (rate: Double, nsPerAccept: Double) {
    let totals = Totals()
    let any = SocketAddress(ip: "127.0.0.1", port: 0)!
    var fds: [Int32] = []
    var port: UInt16 = 0
    if mode == "exclusive" {
        let fd = try! Socket.listen(on: any, reusePort: false, backlog: 4096)
        port = Socket.localAddress(of: fd)!.port
        fds = Array(repeating: fd, count: workers)
    } else {
        for w in 0..<workers {
            let addr = w == 0 ? any : SocketAddress(ip: "127.0.0.1", port: port)!
            let fd = try! Socket.listen(on: addr, reusePort: true, backlog: 4096)
            if w == 0 { port = Socket.localAddress(of: fd)!.port }
            fds.append(fd)
        }
    }
    var threads: [pthread_t] = []
    for w in 0..<workers {
        let lfd = fds[w]
        threads.append(NamedThread.start(name: "bench-w\(w)") {
            let ep = cepoll_create()
            let flags = CEPOLL_EPOLLIN | (mode == "exclusive" ? CEPOLL_EPOLLEXCLUSIVE : CEPOLL_EPOLLET)
            _ = cepoll_ctl(ep, CEPOLL_CTL_ADD, lfd, flags, 1)
            let evs = UnsafeMutablePointer<UInt32>.allocate(capacity: 64)
            let toks = UnsafeMutablePointer<UInt64>.allocate(capacity: 64)
            var storage = sockaddr_storage()
            var n = 0
            let cpu0 = cepoll_thread_cpu_ns()
            while !totals.stop.load(ordering: .relaxed) {
                if cepoll_wait(ep, evs, toks, 64, 50) <= 0 { continue }
                while true {
                    var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
                    let c = cepoll_accept4(lfd, &storage, &len)
                    if c < 0 { break }
                    _ = cepoll_close(c)
                    n += 1
                }
            }
            totals.accepted.add(n, ordering: .relaxed)
            totals.cpuNs.add(cepoll_thread_cpu_ns() - cpu0, ordering: .relaxed)
            _ = cepoll_close(ep)
        })
    }
    var clientThreads: [pthread_t] = []
    let listenPort = port
    for _ in 0..<clients {
        clientThreads.append(NamedThread.start(name: "bench-c") {
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = listenPort.bigEndian
            addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            while !totals.stop.load(ordering: .relaxed) {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var l = linger(l_onoff: 1, l_linger: 0)  // RST on close: no TIME_WAIT pile-up
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
                _ = withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                close(fd)
            }
        })
    }
    sleep(UInt32(seconds))
    totals.stop.store(true, ordering: .relaxed)
    for t in clientThreads + threads { NamedThread.join(t) }
    for fd in Set(fds) { _ = cepoll_close(fd) }
    let n = totals.accepted.load(ordering: .relaxed)
    return (Double(n) / Double(seconds), Double(totals.cpuNs.load(ordering: .relaxed)) / Double(max(1, n)))
}

var results: [String: [(Double, Double)]] = [:]
for _ in 0..<3 {
    for mode in ["reuseport", "exclusive"] { results[mode, default: []].append(run(mode: mode)) }
}
print("mode        accepts/s (median of 3)   worker CPU ns/accept (median)")
for mode in ["reuseport", "exclusive"] {
    let r = results[mode]!.map(\.0).sorted()[1]
    let c = results[mode]!.map(\.1).sorted()[1]
    print("\(mode)\(String(repeating: " ", count: 12 - mode.count))\(Int(r))                     \(Int(c))")
}
