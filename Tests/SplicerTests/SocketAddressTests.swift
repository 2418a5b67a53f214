import Glibc
import Testing
@testable import Splicer

/// The port is read and written in place (the relay does it on every connect).
@Suite struct SocketAddressTests {
    @Test func portReadAndWrittenInPlace() throws {
        for (ip, shown) in [("127.0.0.1", "127.0.0.1"), ("::1", "[::1]"), ("2001:db8::7", "[2001:db8::7]")] {
            var a = try #require(SocketAddress(ip: ip, port: 5432))
            #expect(a.port == 5432)
            #expect(a.description == shown + ":5432")
            a.port = 65535
            #expect(a.port == 65535)
            #expect(a.ipAndPort.port == 65535 && a.ipAndPort.ip == ip)
            a.port = 0
            #expect(a.port == 0)
            #expect(a == SocketAddress(ip: ip, port: 0))
        }
        #expect(SocketAddress().port == 0)
    }
}
