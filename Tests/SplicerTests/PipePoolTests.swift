import CEpoll
import Testing
@testable import Splicer

/// Each pipe knows its own size, and a pipe too small for what the caller must park is never handed out.
@Suite struct PipePoolTests {
    @Test func pipesAreAsLargeAsRequestedAndKnowIt() throws {
        var pool = PipePool(capacity: 4, pipeSize: 262_144)
        let taken = pool.take()
        let p = try #require(taken)
        #expect(p.bytes == 262_144)
        #expect(Int(cepoll_get_pipe_size(p.writeEnd)) == p.bytes)
        pool.giveBack(p)
        // Reused from the pool, same pipe.
        let reused = pool.take(minimum: 100_000)
        let again = try #require(reused)
        #expect(again.readEnd == p.readEnd && again.bytes == 262_144)
        pool.giveBack(again)
        pool.closeAll()
    }

    @Test func theKernelDefaultIsUsedWhenNoSizeIsSet() throws {
        var pool = PipePool(capacity: 4, pipeSize: 0)
        let taken = pool.take()
        let p = try #require(taken)
        #expect(p.bytes == Int(cepoll_get_pipe_size(p.writeEnd)) && p.bytes >= 4096)
        pool.discard(p)
        #expect(pool.inUse == 0)
    }

    @Test func aPipeSmallerThanTheMinimumIsNotHandedOut() throws {
        var pool = PipePool(capacity: 4, pipeSize: 65_536)
        let taken = pool.take()
        let small = try #require(taken)
        pool.giveBack(small)
        // Nothing in the pool or newly made holds 64 MiB (above fs.pipe-max-size): nil, nothing leaks.
        let huge = pool.take(minimum: 64 << 20)
        #expect(huge == nil)
        #expect(pool.inUse == 0)
        pool.closeAll()
    }
}
