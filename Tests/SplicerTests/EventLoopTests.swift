import CEpoll
import Testing
@testable import Splicer

/// What relay workers need from `EventLoop`: stale events dropped after `forget` (no
/// EPOLL_CTL_DEL), the turn hooks, and typed messages through a `LoopMailbox`.
@Suite struct EventLoopTests {
    final class Counter: EventHandler {
        var hits = 0
        var onHit: (() -> Void)?
        override func handle(events: UInt32, tag _: UInt32) {
            hits += 1
            onHit?()
        }
    }

    /// Runs a fixed number of turns, recording the hooks in order.
    final class Turns: LoopTurnHandler {
        let loop: EventLoop
        let limit: Int
        var ended = 0
        var log: [String] = []
        var afterTurn: ((Int) -> Void)?
        var onWoken: (() -> Void)?
        init(_ loop: EventLoop, limit: Int) {
            self.loop = loop
            self.limit = limit
        }
        func turnStarting() { log.append("start") }
        func nextTimeoutMs(now: UInt64) -> Int32 { 1000 }
        func woken() {
            log.append("woken")
            onWoken?()
        }
        func turnEnded(now: UInt64) {
            log.append("end")
            ended += 1
            afterTurn?(ended)
            if ended == limit { loop.stop() }
        }
    }

    /// A readable eventfd (level-triggered: it stays readable until drained).
    static func readableFd() -> Int32 {
        let fd = cepoll_eventfd()
        _ = cepoll_eventfd_signal(fd)
        return fd
    }

    @Test func forgottenRegistrationsEventsAreDroppedEvenWhenItsSlotIsReused() throws {
        let loop = try EventLoop(eventCapacity: 4)
        let a = Self.readableFd(), b = Self.readableFd(), c = cepoll_eventfd()
        defer { for fd in [a, b, c] { _ = cepoll_close(fd) } }
        let ha = Counter(), hb = Counter(), hc = Counter()
        let ta = try loop.register(a, events: CEPOLL_EPOLLIN, ha)
        let tb = try loop.register(b, events: CEPOLL_EPOLLIN, hb)
        // Both are ready in the first turn; whichever runs first forgets the other, which stays in
        // the epoll set and readable, its event already in this turn's buffer.
        var forgotten = LoopToken.none
        ha.onHit = { if forgotten == .none { forgotten = tb; loop.forget(tb) } }
        hb.onHit = { if forgotten == .none { forgotten = ta; loop.forget(ta) } }
        let turns = Turns(loop, limit: 2)
        var tc = LoopToken.none
        turns.afterTurn = { n in
            if n == 1 { #expect(ha.hits + hb.hits == 1, "the forgotten registration's event in this turn must be dropped") }
            // Reuse the freed slot: the forgotten fd's events (old generation) must not reach `hc`.
            if n == 1 { tc = (try? loop.register(c, events: CEPOLL_EPOLLIN, hc)) ?? .none }
        }
        loop.turnHandler = turns
        loop.run()
        #expect(tc != .none && tc.slot == forgotten.slot && tc.generation != forgotten.generation)
        #expect(hc.hits == 0)
        // The survivor is still registered and readable: it fired in both turns.
        #expect(max(ha.hits, hb.hits) == 2)
        #expect(min(ha.hits, hb.hits) == 0)
    }

    @Test func mailboxMessagesArriveThroughWokenBetweenTheTurnHooks() throws {
        let loop = try EventLoop()
        let box = LoopMailbox<Int>(loop: loop)
        let turns = Turns(loop, limit: 1)
        var received: [Int] = []
        turns.onWoken = { box.drain(into: &received) }
        loop.turnHandler = turns
        let poster = NamedThread.start(name: "test-poster") { box.post(1); box.post(2) }
        NamedThread.join(poster)
        loop.run()
        #expect(received == [1, 2])
        #expect(turns.log == ["start", "woken", "end"])
    }
}

extension EventLoopTests {
    @Test func jobsPostedFromAnotherThreadRunOnTheLoopAlongsideTheMailbox() throws {
        let loop = try EventLoop()
        let box = LoopMailbox<Int>(loop: loop)
        let turns = Turns(loop, limit: 1)
        var received: [Int] = []
        turns.onWoken = { box.drain(into: &received) }
        loop.turnHandler = turns
        let ran = Flag()
        let poster = NamedThread.start(name: "test-poster") {
            box.post(7)
            loop.post { ran.set() }
        }
        NamedThread.join(poster)
        loop.run()
        #expect(ran.value && received == [7])
    }

    final class Flag: @unchecked Sendable {
        private(set) var value = false
        func set() { value = true }
    }
}
