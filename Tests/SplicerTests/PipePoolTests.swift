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

    /// `maxpipes`: one process-wide cap shared by every worker's pool; a pipe parked back in a pool
    /// counts as free, not used.
    @Test func maxpipesCapsPipesInUseAcrossWorkers() throws {
        let gauge = PipeGauge(limit: 3)
        var a = PipePool(capacity: 4, pipeSize: 0, gauge: gauge)
        var b = PipePool(capacity: 4, pipeSize: 0, gauge: gauge)
        let p1 = try #require(Self.take(&a))
        let p2 = try #require(Self.take(&a))
        let p3 = try #require(Self.take(&b))
        #expect(Self.take(&b) == nil)
        #expect(Self.take(&a) == nil)
        #expect(gauge.used == 3 && gauge.free == 0)
        a.giveBack(p1)
        #expect(gauge.used == 2 && gauge.free == 1)
        let p4 = try #require(Self.take(&b))  // b's own pool is empty: a new pipe, within the cap again
        #expect(gauge.used == 3 && gauge.free == 1)
        // Bytes that must be parked are never refused for the cap (the pipe is their only buffer).
        let parked = try #require(Self.take(&b, minimum: 100, pastLimit: true))
        #expect(gauge.used == 4)
        b.discard(parked)
        a.giveBack(p2)
        b.giveBack(p3)
        b.giveBack(p4)
        #expect(gauge.used == 0 && gauge.free == 4)
        a.closeAll()
        b.closeAll()
        #expect(gauge.free == 0)
    }

    @Test func withoutMaxpipesOnlyTheCountsAreKept() throws {
        let gauge = PipeGauge(limit: 0)
        var pool = PipePool(capacity: 1, pipeSize: 0, gauge: gauge)
        var taken: [Pipe] = []
        for _ in 0..<5 { if let p = pool.take() { taken.append(p) } }
        #expect(taken.count == 5 && gauge.used == 5)
        for p in taken { pool.giveBack(p) }  // the pool keeps one, closes the rest
        #expect(gauge.used == 0 && gauge.free == 1)
        pool.closeAll()
    }

    private static func take(_ pool: inout PipePool, minimum: Int = 1, pastLimit: Bool = false) -> Pipe? {
        pool.take(minimum: minimum, pastLimit: pastLimit)
    }
}
