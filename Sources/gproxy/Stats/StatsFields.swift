/// The HAProxy 2.6 stat field table (CSV columns 0...102, mgmt §9.1) and the typed values a row
/// carries. CSV, JSON and `show stat` all render the same `StatsRow`s, so a field's value is
/// decided once, here and in `StatsRows`, and the formats cannot drift apart.

/// One field's value, typed like HAProxy's `struct field` so JSON can report `u32`/`u64`/`s32`/`str`.
enum StatValue: Sendable, Equatable {
    case str(String)
    case u32(UInt64)
    case u64(UInt64)
    case s32(Int64)
    case s64(Int64)

    /// The text a CSV cell (before quoting) shows.
    var text: String {
        switch self {
        case .str(let s): s
        case .u32(let v), .u64(let v): String(v)
        case .s32(let v), .s64(let v): String(v)
        }
    }

    /// HAProxy's JSON `value.type`.
    var jsonType: String {
        switch self {
        case .str: "str"
        case .u32: "u32"
        case .u64: "u64"
        case .s32: "s32"
        case .s64: "s64"
        }
    }
}

/// A stat field's name and HAProxy's three tags (origin, nature, scope), as `show stat typed` codes
/// them: origin K(ey) C(onfig) M(etric) S(tatus) P(roduct); nature N(ame) G(auge) L(imit) M(ax)
/// R(ate) C(ounter) D(uration) A(ge) T(ime) O(utput) a(vg); scope P(rocess) S(ervice).
struct StatField: Sendable, Equatable {
    var name: String
    var tags: String

    var origin: String {
        switch tags.first {
        case "K": "Key"
        case "C": "Config"
        case "S": "Status"
        case "P": "Product"
        default: "Metric"
        }
    }

    var nature: String {
        let c = tags.dropFirst().first
        switch c {
        case "N": return "Name"
        case "G": return "Gauge"
        case "L": return "Limit"
        case "M": return "Max"
        case "R": return "Rate"
        case "C": return "Counter"
        case "D": return "Duration"
        case "A": return "Age"
        case "T": return "Time"
        case "O": return "Output"
        case "a": return "Avg"
        default: return "Gauge"
        }
    }

    var scope: String { tags.last == "P" ? "Process" : "Service" }
}

enum StatFields {
    /// Fields 0...102 in HAProxy 2.6.12's order; tools index columns by position, so never reorder.
    static let all: [StatField] = table.split(separator: " ").map { pair in
        let parts = pair.split(separator: ":")
        return StatField(name: String(parts[0]), tags: String(parts[1]))
    }

    static var count: Int { all.count }

    private static let positions: [String: Int] = Dictionary(
        uniqueKeysWithValues: all.enumerated().map { ($1.name, $0) })

    /// Index of a field by name (test and renderer convenience; not for hot paths).
    static func index(_ name: String) -> Int {
        guard let i = positions[name] else {
            preconditionFailure("unknown stat field \(name)")
        }
        return i
    }

    private static let table = """
    pxname:KNS svname:KNS qcur:MGP qmax:MMP scur:MGP smax:MMP slim:CLP stot:MCP bin:MCP bout:MCP \
    dreq:MCP dresp:MCP ereq:MCP econ:MCP eresp:MCP wretr:MCP wredis:MCP status:SOP weight:MaS \
    act:MaS bck:MaS chkfail:MCS chkdown:MCS lastchg:MDS downtime:MDS qlimit:CLP pid:KGP iid:KGS \
    sid:KGS throttle:MaS lbtot:MCS tracked:CNS type:CGS rate:MRP rate_lim:CLP rate_max:MMP \
    check_status:SOS check_code:SOS check_duration:MDS hrsp_1xx:MCP hrsp_2xx:MCP hrsp_3xx:MCP \
    hrsp_4xx:MCP hrsp_5xx:MCP hrsp_other:MCP hanafail:MCS req_rate:MRP req_rate_max:MMP \
    req_tot:MCP cli_abrt:MCP srv_abrt:MCP comp_in:MCP comp_out:MCP comp_byp:MCP comp_rsp:MCP \
    lastsess:MAP last_chk:SOS last_agt:SOS qtime:MaP ctime:MaP rtime:MaP ttime:MaP \
    agent_status:SOS agent_code:SOS agent_duration:MDS check_desc:SOS agent_desc:SOS \
    check_rise:CGS check_fall:CGS check_health:SGS agent_rise:MaS agent_fall:CGS agent_health:SGS \
    addr:CGS cookie:CGS mode:CGS algo:CGS conn_rate:MRP conn_rate_max:MMP conn_tot:MCP \
    intercepted:MCP dcon:MCP dses:MCP wrew:MCP connect:MCP reuse:MCP cache_lookups:MCP \
    cache_hits:MCP srv_icur:MGP src_ilim:MGP qtime_max:MMP ctime_max:MMP rtime_max:MMP \
    ttime_max:MMP eint:MCP idle_conn_cur:MGP safe_conn_cur:MGP used_conn_cur:MGP \
    need_conn_est:MGP uweight:MaS agg_server_status:MGP agg_server_check_status:MGP \
    agg_check_status:MGP
    """
}

/// One CSV/JSON row: a frontend, a server or a backend, with `StatFields.count` cells (nil = empty).
struct StatsRow: Sendable, Equatable {
    enum Kind: Int, Sendable {
        case frontend = 0, backend = 1, server = 2

        /// JSON `objType`.
        var objType: String {
            switch self {
            case .frontend: "Frontend"
            case .backend: "Backend"
            case .server: "Server"
            }
        }
    }

    var kind: Kind
    var proxyId: Int
    /// Server id (`sid`), 0 for frontend and backend rows.
    var id: Int
    var fields: [StatValue?]

    init(kind: Kind, proxyId: Int, id: Int) {
        self.kind = kind
        self.proxyId = proxyId
        self.id = id
        fields = Array(repeating: nil, count: StatFields.count)
    }

    subscript(_ name: String) -> StatValue? {
        get { fields[StatFields.index(name)] }
        set { fields[StatFields.index(name)] = newValue }
    }
}
