import Testing
@testable import gproxy

/// A strict parser for the Prometheus text format 0.0.4, enough to reject anything a scraper would.
struct PromParser {
    struct Sample: Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    enum Failure: Error { case bad(String, line: String) }

    var samples: [Sample] = []
    var types: [String: String] = [:]
    var helps: Set<String> = []

    static func isMetricName(_ s: Substring) -> Bool {
        guard let f = s.first, f.isASCII, f.isLetter || f == "_" || f == ":" else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") }
    }

    static func isLabelName(_ s: Substring) -> Bool {
        guard let f = s.first, f.isASCII, f.isLetter || f == "_" else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }

    init(_ text: String) throws {
        guard text.hasSuffix("\n") else { throw Failure.bad("no final LF", line: "") }
        var seriesSeen: Set<String> = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ", maxSplits: 3)
                guard parts.count >= 3, Self.isMetricName(parts[2]) else { throw Failure.bad("comment", line: String(line)) }
                let name = String(parts[2])
                if parts[1] == "HELP" {
                    guard !helps.contains(name), types[name] == nil else { throw Failure.bad("HELP order", line: String(line)) }
                    helps.insert(name)
                } else {
                    guard parts.count == 4, ["counter", "gauge", "untyped", "summary", "histogram"].contains(parts[3]),
                          types[name] == nil, samples.allSatisfy({ $0.name != name }) else { throw Failure.bad("TYPE", line: String(line)) }
                    types[name] = String(parts[3])
                }
                continue
            }
            guard !line.hasPrefix("#"), !line.isEmpty else { throw Failure.bad("stray", line: String(line)) }
            var rest = line[...]
            let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " } ?? rest.endIndex
            let name = rest[..<nameEnd]
            guard Self.isMetricName(name) else { throw Failure.bad("name", line: String(line)) }
            guard types[String(name)] != nil, helps.contains(String(name)) else { throw Failure.bad("sample before HELP/TYPE", line: String(line)) }
            rest = rest[nameEnd...]
            var labels: [String: String] = [:]
            if rest.first == "{" {
                rest = rest.dropFirst()
                while rest.first != "}" {
                    guard let eq = rest.firstIndex(of: "=") else { throw Failure.bad("label", line: String(line)) }
                    let ln = rest[..<eq]
                    guard Self.isLabelName(ln), labels[String(ln)] == nil else { throw Failure.bad("label name", line: String(line)) }
                    rest = rest[rest.index(after: eq)...]
                    guard rest.first == "\"" else { throw Failure.bad("label quote", line: String(line)) }
                    rest = rest.dropFirst()
                    var value = ""
                    while true {
                        guard let c = rest.first else { throw Failure.bad("unterminated", line: String(line)) }
                        rest = rest.dropFirst()
                        if c == "\"" { break }
                        if c == "\\" {
                            guard let e = rest.first else { throw Failure.bad("escape", line: String(line)) }
                            rest = rest.dropFirst()
                            switch e {
                            case "\\": value.append("\\")
                            case "\"": value.append("\"")
                            case "n": value.append("\n")
                            default: throw Failure.bad("escape", line: String(line))
                            }
                        } else {
                            value.append(c)
                        }
                    }
                    labels[String(ln)] = value
                    if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" { throw Failure.bad("sep", line: String(line)) }
                }
                rest = rest.dropFirst()
            }
            guard rest.first == " ", let v = Double(rest.dropFirst()), !rest.dropFirst().contains(" ") else {
                throw Failure.bad("value", line: String(line))
            }
            let key = "\(name)\(labels.sorted { $0.key < $1.key })"
            guard seriesSeen.insert(key).inserted else { throw Failure.bad("duplicate series", line: String(line)) }
            samples.append(Sample(name: String(name), labels: labels, value: v))
        }
    }

    func value(_ name: String, _ labels: [String: String]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }
}

@Suite struct StatsPrometheusTests {
    @Test func parsesStrictlyWithExpectedSamples() throws {
        let text = StatsPrometheus.render(StatsFixtures.snapshot)
        let p = try PromParser(text)
        let pg1 = ["proxy": "opengauss", "server": "pg1"]
        #expect(p.value("haproxy_frontend_current_sessions", ["proxy": "opengauss"]) == 1)
        #expect(p.value("haproxy_frontend_bytes_in_total", ["proxy": "opengauss"]) == 1000)
        #expect(p.value("haproxy_backend_current_queue", ["proxy": "opengauss"]) == 0)
        #expect(p.value("haproxy_server_status", pg1.merging(["state": "UP"]) { a, _ in a }) == 1)
        #expect(p.value("haproxy_server_status", pg1.merging(["state": "DOWN"]) { a, _ in a }) == 0)
        #expect(p.value("haproxy_server_status", ["proxy": "opengauss", "server": "pg2", "state": "DOWN"]) == 1)
        #expect(p.value("haproxy_server_status", ["proxy": "opengauss_balance", "server": "pg2", "state": "UP"]) == 1)
        #expect(p.value("haproxy_server_current_sessions", pg1) == 1)
        #expect(p.value("haproxy_server_max_sessions", pg1) == 3)
        #expect(p.value("haproxy_server_sessions_total", pg1) == 12)
        #expect(p.value("haproxy_server_bytes_in_total", pg1) == 1000)
        #expect(p.value("haproxy_server_bytes_out_total", pg1) == 2000)
        #expect(p.value("haproxy_server_check_failures_total", ["proxy": "opengauss", "server": "pg2"]) == 1)
        #expect(p.value("haproxy_server_weight", pg1) == 1)
        #expect(p.value("haproxy_server_current_queue", pg1) == 0)
        #expect(p.value("haproxy_server_connection_errors_total", pg1) == 0)
        #expect(p.value("haproxy_server_check_last_change_seconds", pg1) == 7380)
        #expect(p.value("haproxy_server_check_duration_seconds", pg1) == 0.001)
        #expect(p.value("gproxy_server_check_rate", pg1) == 0)
        #expect(p.types["haproxy_server_sessions_total"] == "counter")
        #expect(p.types["haproxy_server_status"] == "gauge")
        // Every family has HELP and TYPE.
        #expect(Set(p.samples.map(\.name)).isSubset(of: p.helps))
    }

    @Test func labelValuesAreEscaped() throws {
        var s = StatsFixtures.snapshot
        s.proxies[0].name = "we\"ird\\na\nme"
        s.proxies[0].servers[0].checkRate = 0.5
        let p = try PromParser(StatsPrometheus.render(s))
        #expect(p.value("haproxy_server_current_sessions", ["proxy": "we\"ird\\na\nme", "server": "pg1"]) == 1)
        #expect(p.value("gproxy_server_check_rate", ["proxy": "we\"ird\\na\nme", "server": "pg1"]) == 0.5)
    }
}
