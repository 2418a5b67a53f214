import Testing
@testable import gproxy

@Suite struct ModelTests {
    @Test func httpCheckRequestBytesMatchHAProxy() {
        #expect(HTTPCheckRequest().requestBytes == "OPTIONS / HTTP/1.0\r\n\r\n")
        let replica = HTTPCheckRequest(method: "OPTIONS", uri: "/replica", version: "HTTP/1.0")
        #expect(replica.requestBytes == "OPTIONS /replica HTTP/1.0\r\n\r\n")
    }
}
