/// The demo's three listen ports: the seed's (HAProxy blog / openGauss guide) 5000 read-write, 5001
/// read-only and 7000 stats by default. `--demo-port-base N` moves them together and keeps the seed's
/// spacing: N, N + 1 and N + 2000.
struct DemoPorts: Equatable {
    static let defaultBase: UInt16 = 5000
    /// The stats port's distance from the base (7000 - 5000).
    static let statsOffset: UInt16 = 2000
    /// The highest base whose stats port still fits in 16 bits.
    static let maxBase: UInt16 = UInt16.max - statsOffset

    var readWrite: UInt16
    var readOnly: UInt16
    var stats: UInt16

    init(base: UInt16) {
        readWrite = base
        readOnly = base + 1
        stats = base + Self.statsOffset
    }
}
