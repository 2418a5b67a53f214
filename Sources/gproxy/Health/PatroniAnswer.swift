import Foundation

/// What a Patroni REST API said about its node in a GET health reply's JSON body
/// (`{"state": "running", "role": "primary", "timeline": 3, ...}`, patroni-api.md §4.1).
struct PatroniAnswer: Equatable, Sendable {
    var role: String
    var state: String
    var timeline: Int?

    /// The node runs as the primary (Patroni < 4 says "master").
    var isRunningLeader: Bool { (role == "primary" || role == "master") && state == "running" }
    var isRunningReplica: Bool { role == "replica" && state == "running" }

    /// Parses the body after the header block; nil if there is no JSON object with a role.
    static func parse(_ response: [UInt8]) -> PatroniAnswer? {
        guard let end = HTTPCheckEvaluator.firstIndex(of: [13, 10, 13, 10], in: response) else { return nil }
        let body = Data(response[(end + 4)...])
        guard !body.isEmpty,
              let doc = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any],
              let role = doc["role"] as? String
        else { return nil }
        return PatroniAnswer(role: role, state: doc["state"] as? String ?? "unknown",
                             timeline: (doc["timeline"] as? NSNumber)?.intValue)
    }
}
