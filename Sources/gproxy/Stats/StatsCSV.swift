/// HAProxy 2.6's CSV export (`GET <uri>;csv`, CLI `show stat`), §9.2: a `# ` header with fields
/// 0...102, then one line per row. Every line, header included, ends with a trailing comma and LF;
/// that trailing comma is why tools see 104 columns, the last one empty.
enum StatsCSV {
    /// The header line, LF included.
    static let header: String = "# " + StatFields.all.map(\.name).joined(separator: ",") + ",\n"

    /// The whole export: header plus every row of the snapshot.
    static func render(_ snapshot: StatsSnapshot, filter: StatsRows.Filter = StatsRows.Filter()) -> String {
        render(rows: StatsRows.build(snapshot, filter: filter))
    }

    static func render(rows: [StatsRow]) -> String {
        var out = header
        out.reserveCapacity(header.utf8.count + rows.count * 400)
        for row in rows { out += line(row) }
        return out
    }

    /// One row: each cell quoted when needed, empty for nil, a trailing comma, LF.
    static func line(_ row: StatsRow) -> String {
        var s = ""
        for cell in row.fields {
            if let cell { s += quote(cell.text) }
            s += ","
        }
        s += "\n"
        return s
    }

    /// HAProxy's `csv_enc`: a cell with a comma, a double quote or a line break goes between double
    /// quotes with inner quotes doubled; anything else is written as is.
    static func quote(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"")
            || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) else { return text }
        var s = "\""
        for ch in text {
            if ch == "\"" { s += "\"\"" } else { s.append(ch) }
        }
        s += "\""
        return s
    }
}
