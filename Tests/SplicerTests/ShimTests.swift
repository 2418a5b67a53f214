import CEpoll
import Testing

@Suite struct ShimTests {
    @Test func pipeSizeCanBeRaised() {
        var fds: [Int32] = [0, 0]
        #expect(cepoll_pipe2(&fds) == 0)
        let size = cepoll_set_pipe_size(fds[1], 1 << 20)
        #expect(size >= 1 << 16)
        _ = cepoll_close(fds[0])
        _ = cepoll_close(fds[1])
    }
}
