import Glibc

/// Which of the configured virtual IPs (global `vip`, a gproxy extension) this host holds right now.
///
/// keepalived moves the VIP by adding it to an interface, so "held" means "the address is on one of
/// this host's interfaces" (getifaddrs). A bind() test would lie on hosts with
/// `net.ipv4.ip_nonlocal_bind=1`, which many keepalived recipes set. Read at render time on the
/// control thread: a stats request costs one netlink dump, and the answer is never stale.
enum VirtualAddressWatch {
    struct Holding: Sendable, Equatable {
        var address: String
        var held: Bool
    }

    static func holdings(_ addresses: [String]) -> [Holding] {
        guard !addresses.isEmpty else { return [] }
        let local = localAddresses()
        return addresses.map { Holding(address: $0, held: local.contains(canonical($0) ?? $0)) }
    }

    /// The textual form inet_ntop gives, so "::0001" and "::1" compare equal.
    static func canonical(_ address: String) -> String? {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 { return ntop(AF_INET, &v4, socklen_t(INET_ADDRSTRLEN)) }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, address, &v6) == 1 { return ntop(AF_INET6, &v6, socklen_t(INET6_ADDRSTRLEN)) }
        return nil
    }

    static func localAddresses() -> Set<String> {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var out = Set<String>()
        var cur = head
        while let ifa = cur {
            if let sa = ifa.pointee.ifa_addr {
                switch Int32(sa.pointee.sa_family) {
                case AF_INET:
                    var a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    if let s = ntop(AF_INET, &a, socklen_t(INET_ADDRSTRLEN)) { out.insert(s) }
                case AF_INET6:
                    var a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    if let s = ntop(AF_INET6, &a, socklen_t(INET6_ADDRSTRLEN)) { out.insert(s) }
                default: break
                }
            }
            cur = ifa.pointee.ifa_next
        }
        return out
    }

    private static func ntop(_ family: Int32, _ addr: UnsafeRawPointer, _ size: socklen_t) -> String? {
        var buf = [CChar](repeating: 0, count: Int(size))
        guard inet_ntop(family, addr, &buf, size) != nil else { return nil }
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
