import Testing
@testable import gproxy

/// The `patroni` keyword: parsed into the proxy's policy, refused with file:line when misused.
@Suite struct ConfigPatroniTests {
    @Test func primaryAndReplicaPolicies() throws {
        let c = try ConfigLoader.parse(text: """
            listen rw
                bind 127.0.0.1:5000
                patroni primary fast-inter 250ms
                server a 127.0.0.1:6000 check port 8008
            listen ro
                bind 127.0.0.1:5001
                patroni replica max-lag 16MB fallback-to-leader
                server a 127.0.0.1:6000 check port 8008

            """, file: "p.cfg")
        #expect(c.proxy(named: "rw")?.patroni == PatroniPolicy(role: .primary, fastInterMs: 250, file: "p.cfg", line: 3))
        let ro = try #require(c.proxy(named: "ro")?.patroni)
        #expect(ro.role == .replica && ro.maxLagBytes == 16 << 20 && ro.fallbackToLeader && ro.fastInterMs == 200)
    }

    @Test(arguments: [
        ("listen x\n  bind :5000\n  patroni leader\n  server a 127.0.0.1:1 check\n",
         "c.cfg:3: 'patroni' expects 'primary' or 'replica', then options: 'fast-inter <time>', and for replica 'max-lag <size>', 'fallback-to-leader'."),
        ("listen x\n  bind :5000\n  patroni primary\n  server a 127.0.0.1:1\n",
         "c.cfg:3: proxy 'x' : 'patroni' needs 'check' (with 'port' = the Patroni REST API) on every server; 'a' has none."),
        ("listen x\n  bind :5000\n  patroni replica max-lag lots\n  server a 127.0.0.1:1 check\n",
         "c.cfg:3: 'patroni replica': 'max-lag' expects a size such as 1048576, 16MB or 512kB."),
        ("listen x\n  bind :5000\n  patroni primary max-lag 1MB\n  server a 127.0.0.1:1 check\n",
         "c.cfg:3: 'patroni primary': unknown option 'max-lag'. 'patroni' expects 'primary' or 'replica', then options: 'fast-inter <time>', and for replica 'max-lag <size>', 'fallback-to-leader'."),
        ("defaults\n  patroni primary\n", "c.cfg:2: 'patroni' is not allowed in a 'defaults' section: set it per backend."),
        ("frontend f\n  bind :5000\n  patroni primary\n  default_backend b\nbackend b\n  server a 127.0.0.1:1 check\n",
         "c.cfg:3: 'patroni' needs a backend: it is not allowed in frontend 'f'."),
    ])
    func misuseIsRefused(_ text: String, _ message: String) {
        #expect(throws: ConfigErrors.self) { try ConfigLoader.parse(text: text, file: "c.cfg") }
        do {
            _ = try ConfigLoader.parse(text: text, file: "c.cfg")
        } catch {
            #expect(error.errors.map(\.description).contains(message))
        }
    }
}
