import Glibc
import Testing
@testable import Splicer

/// The one reading of a CEpoll wrapper's result (count or -errno).
@Suite struct IOResultTests {
    @Test func counts() {
        #expect(IOResult(5) == .done(5))
        #expect(IOResult(0) == .end)
        #expect(IOResult(-Int(EAGAIN)) == .wouldBlock)
        #expect(IOResult(-Int(EINTR)) == .interrupted)
        #expect(IOResult(-Int(EPIPE)) == .failed(Errno(EPIPE)))
        #expect(IOResult(Int32(-ECONNRESET)) == .failed(Errno(ECONNRESET)))
    }

    /// accept may return descriptor 0: that is a connection, not an end of stream.
    @Test func descriptors() {
        #expect(IOResult(descriptor: 0) == .done(0))
        #expect(IOResult(descriptor: 7) == .done(7))
        #expect(IOResult(descriptor: -EAGAIN) == .wouldBlock)
        #expect(IOResult(descriptor: -EMFILE) == .failed(Errno(EMFILE)))
    }
}
