@testable import gproxy

/// (b) The `stats admin` form body parser (application/x-www-form-urlencoded) and its application.
/// Invariants: never traps; a body that parses re-encodes to one that parses the same; splitting
/// a body at an `&` and parsing the halves agrees with parsing the whole; the outcome is ERRP
/// exactly when the action or backend is unknown, and DONE/PART/NONE follow the servers named.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAdminForm(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    let form = StatsAdminForm.parse(bytes[...])
    guard let form else { return 0 }

    var encoded: [String] = []
    if let action = form.action { encoded.append("action=" + percentEncode(action)) }
    if let backend = form.backend { encoded.append("b=" + percentEncode(backend)) }
    for s in form.servers { encoded.append("s=" + percentEncode(s)) }
    let again = StatsAdminForm.parse(Array(encoded.joined(separator: "&").utf8)[...])
    fuzzCheck(again == form, "re-encoded form parses as \(String(describing: again)), not \(form)")

    if let amp = bytes.firstIndex(of: UInt8(ascii: "&")) {
        let head = StatsAdminForm.parse(bytes[..<amp]), tail = StatsAdminForm.parse(bytes[(amp + 1)...])
        fuzzCheck(head != nil && tail != nil, "a half of a valid body does not parse")
        if let head, let tail {
            fuzzCheck(form.servers == head.servers + tail.servers, "servers differ when split at &")
            fuzzCheck(form.action == (tail.action ?? head.action) && form.backend == (tail.backend ?? head.backend),
                      "action/backend differ when split at &")
        }
    }

    let outcome = StatsAdminForm.apply(form, admin: FuzzAdmin())
    let validAction = form.action.map { a in StatsAdminForm.actions.contains { $0.name == a } } ?? false
    let validBackend = form.backend == "db" || form.backend == "#2"
    fuzzCheck((outcome == .error) == !(validAction && validBackend), "outcome \(outcome) for \(form)")
    if outcome != .error {
        // FuzzAdmin refuses state changes for pg2; everything else on pg1/pg2 succeeds.
        let known = form.servers.filter { $0 == "pg1" || $0 == "pg2" }
        let refused = form.action == "shutdown" ? 0 : known.filter { $0 == "pg2" }.count
        let applied = known.count - refused
        let expected: StatsAdminForm.Outcome = applied == 0 ? .none : applied == form.servers.count ? .done : .partial
        fuzzCheck(outcome == expected, "outcome \(outcome), expected \(expected) for \(form)")
    }
    return 0
}

private func percentEncode(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        let unreserved = (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
            || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".")
        if unreserved {
            out.unicodeScalars.append(Unicode.Scalar(b))
        } else {
            let hex = Array("0123456789ABCDEF".utf8)
            out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
        }
    }
    return out
}
