/// The `;json` export and CLI `show stat json` (§9.5): an array with one element per process, each
/// an array of one object per non-empty field of every row, in HAProxy's shape:
/// `{"objType":"Server","proxyId":2,"id":1,"field":{"pos":0,"name":"pxname"},"processNum":1,
///   "tags":{"origin":"Key","nature":"Name","scope":"Service"},"value":{"type":"str","value":"pg1"}}`.
/// Written by hand so the key order matches HAProxy's and no Foundation encoder is needed.
enum StatsJSON {
    static func render(_ snapshot: StatsSnapshot, filter: StatsRows.Filter = StatsRows.Filter()) -> String {
        render(rows: StatsRows.build(snapshot, filter: filter))
    }

    static func render(rows: [StatsRow]) -> String {
        var out = "[["
        var first = true
        for row in rows {
            for (pos, cell) in row.fields.enumerated() {
                guard let cell else { continue }
                out += first ? "\n" : ",\n"
                first = false
                out += object(row: row, pos: pos, value: cell)
            }
        }
        out += "\n]]\n"
        return out
    }

    private static func object(row: StatsRow, pos: Int, value: StatValue) -> String {
        let f = StatFields.all[pos]
        let v: String
        switch value {
        case .str(let s): v = quoted(s)
        default: v = value.text
        }
        return "{\"objType\":\"\(row.kind.objType)\",\"proxyId\":\(row.proxyId),\"id\":\(row.id),"
            + "\"field\":{\"pos\":\(pos),\"name\":\"\(f.name)\"},\"processNum\":1,"
            + "\"tags\":{\"origin\":\"\(f.origin)\",\"nature\":\"\(f.nature)\",\"scope\":\"\(f.scope)\"},"
            + "\"value\":{\"type\":\"\(value.jsonType)\",\"value\":\(v)}}"
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped (RFC 8259 §7).
    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
        return out
    }
}
