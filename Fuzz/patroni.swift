@testable import gproxy
import Foundation

/// (d) Patroni's REST API answers: a health endpoint's JSON (`GET /`, `/replica`...) and `/cluster`.
/// Input: a whole HTTP response (head + JSON body), as the checker receives it.
/// Invariants: never traps (deep nesting, huge numbers, odd types); a parsed answer, written back
/// as JSON behind a fresh head, parses the same; the result does not depend on the head's headers;
/// members written back as JSON parse to the same names, hosts and ports.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPatroni(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    let answer = PatroniAnswer.parse(bytes)
    let members = ClusterMember.parse(bytes)
    fuzzCheck(PatroniAnswer.parse(bytes) == answer && ClusterMember.parse(bytes) == members, "two parses differ")

    // Only the body counts: another head in front of the same body gives the same result.
    if let end = HTTPCheckEvaluator.firstIndex(of: [13, 10, 13, 10], in: bytes) {
        let body = Array(bytes[(end + 4)...])
        let other = Array("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n".utf8) + body
        fuzzCheck(PatroniAnswer.parse(other) == answer && ClusterMember.parse(other) == members, "head changed the result")
    }

    if let answer {
        var doc: [String: Any] = ["role": answer.role, "state": answer.state]
        if let t = answer.timeline { doc["timeline"] = t }
        let json = try! JSONSerialization.data(withJSONObject: doc)
        let again = PatroniAnswer.parse(Array("HTTP/1.1 200 OK\r\n\r\n".utf8) + Array(json))
        fuzzCheck(again == answer, "answer round trip: \(String(describing: again)) vs \(answer)")
        fuzzCheck(answer.isRunningLeader == ((answer.role == "primary" || answer.role == "master") && answer.state == "running")
                  && !(answer.isRunningLeader && answer.isRunningReplica), "role predicates")
    }
    // Members written back (with a plain api_url) parse to the same names, hosts and ports. An
    // api_url without a host is kept with an empty API host (reconcile() then skips the member).
    if let members, !members.isEmpty {
        let list: [[String: Any]] = members.map {
            ["name": $0.name, "host": $0.host, "port": Int($0.port), "api_url": "http://127.0.0.1:\($0.apiPort)/patroni"]
        }
        let json = try! JSONSerialization.data(withJSONObject: ["members": list])
        let again = ClusterMember.parse(Array("HTTP/1.1 200 OK\r\n\r\n".utf8) + Array(json)) ?? []
        fuzzCheck(again.map(\.name) == members.map(\.name) && again.map(\.host) == members.map(\.host)
                  && again.map(\.port) == members.map(\.port) && again.map(\.apiPort) == members.map(\.apiPort),
                  "members round trip: \(again) vs \(members)")
    }
    return 0
}
