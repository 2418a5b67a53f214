@testable import gproxy
import Glibc

/// A failed invariant: says which, then aborts so libFuzzer saves the input as a crash.
func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
               file: StaticString = #fileID, line: UInt = #line) {
    if condition() { return }
    let text = Array("fuzz invariant failed (\(file):\(line)): \(message())\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

/// libFuzzer's input as an array.
func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// A runtime API backend with one backend of two servers (and a frontend-only proxy), so admin
/// commands and form posts have something to resolve and act on. Records nothing: fuzzing needs
/// every run to see the same state.
struct FuzzAdmin: RuntimeAdmin {
    static let snapshotValue: StatsSnapshot = {
        func server(_ id: Int) -> ServerStats {
            ServerStats(name: "pg\(id)", id: id, address: "127.0.0.1:\(5431 + id)", status: id == 1 ? "UP" : "DOWN",
                        lastChangeSeconds: 10, downtimeSeconds: 0, weight: 1, userWeight: 1, backup: false,
                        checked: true, checkStatus: nil, checkCode: nil, checkDurationMs: nil, lastCheckInfo: "",
                        checkRise: 2, checkFall: 3, checkHealth: 4, checkFailures: 0, downTransitions: 0)
        }
        let db = ProxyStats(name: "db", id: 2, mode: "tcp", frontend: FrontendStats(status: "OPEN"),
                            servers: [server(1), server(2)],
                            backend: BackendStats(status: "UP", weight: 1, activeServers: 1, backupServers: 0,
                                                  downTransitions: 0, lastChangeSeconds: 10, downtimeSeconds: 0,
                                                  algorithm: "roundrobin"))
        let front = ProxyStats(name: "front", id: 3, mode: "tcp", frontend: FrontendStats(status: "OPEN"))
        return StatsSnapshot(pid: 1, version: "fuzz", nodeName: "fuzz", uptimeSeconds: 1, proxies: [db, front])
    }()

    func snapshot() -> StatsSnapshot { Self.snapshotValue }
    func setServerAdmin(backend: String, server: String, state: ServerAdminState) -> String? {
        server == "pg2" ? "refused" : nil
    }
    func setServerWeight(backend: String, server: String, weight: Int) -> String? { nil }
    func shutdownSessions(backend: String, server: String) -> String? { nil }
    func clearCounters(all: Bool) {}
}
