import Glibc
import Synchronization
import Testing
@testable import Splicer

/// Under a process-wide maxconn a connection waits in the kernel backlog of one worker's listener
/// (SO_REUSEPORT hashes it to one socket). When a slot frees, that worker must accept it, whichever
/// worker freed the slot and whichever else raced for it.
@Suite(.serialized) struct AcceptWakeupTests {
    /// Stalls two workers at accept checkpoints so that, once armed, this interleaving happens:
    /// the holder (its session just ended) reserves the freed slot for an accept that will find
    /// its own backlog empty; meanwhile the waiter (the connection is in its backlog) finds no room
    /// and goes back to sleep; only then does the holder give its reservation back.
    final class ForcedInterleaving: Sendable {
        struct State {
            var log: [AcceptCheckpoint] = []
            var holder = -1, waiter = -1
            var armed = false, holderReserved = false, waiterSlept = false
        }
        let state = Locked(State())

        var count: Int { state.withLock { $0.log.count } }
        var forced: Bool { state.withLock { $0.holderReserved && $0.waiterSlept } }

        /// The worker that reported `waitingForRoom` first at or after `mark`, if any.
        func sleeper(since mark: Int) -> Int? {
            state.withLock { st in
                for c in st.log[mark...] { if case .waitingForRoom(let w) = c { return w } }
                return nil
            }
        }

        func arm(holder: Int, waiter: Int) {
            state.withLock { $0.holder = holder; $0.waiter = waiter; $0.armed = true }
        }

        /// Called on worker threads.
        func observe(_ c: AcceptCheckpoint) {
            enum Stall { case none, untilHolderReserved, untilWaiterSlept }
            let stall = state.withLock { st -> Stall in
                st.log.append(c)
                guard st.armed else { return .none }
                switch c {
                case .reserving(let w) where w == st.waiter && !st.holderReserved:
                    return .untilHolderReserved
                case .reserved(let w) where w == st.holder && !st.holderReserved:
                    st.holderReserved = true
                    return .untilWaiterSlept
                case .waitingForRoom(let w) where w == st.waiter && st.holderReserved:
                    st.waiterSlept = true
                    return .none
                default:
                    return .none
                }
            }
            switch stall {
            case .none: return
            case .untilHolderReserved: _ = EngineHarness.eventually(2000) { state.withLock { $0.holderReserved } }
            case .untilWaiterSlept: _ = EngineHarness.eventually(2000) { state.withLock { $0.waiterSlept } }
            }
        }
    }

    /// Sessions each worker has accepted on the first frontend (per-worker counter blocks).
    static func accepted(_ h: EngineHarness) -> [UInt64] {
        h.engine.counterBlocks.map { $0.load(h.engine.layout.frontend(0, .sessions)) }
    }

    /// Which worker accepted since `before`.
    static func acceptor(_ h: EngineHarness, since before: [UInt64]) -> Int? {
        let now = accepted(h)
        return now.indices.first { now[$0] > before[$0] }
    }

    @Test func aSlotGivenBackByAnIdleWorkerWakesTheWorkerHoldingTheConnection() throws {
        let server = QueueTests.greeter("s1")
        let probe = ForcedInterleaving()
        let h = try EngineHarness(servers: [server.port], workers: 2, globalMaxconn: 1,
                                  acceptProbe: { probe.observe($0) })
        defer { h.stop(); server.stop() }

        // Arrange: one session served by the holder, the next connection in the other worker's
        // backlog. SO_REUSEPORT picks the listener by a hash of the 4-tuple, so keep connecting
        // (each connection from a new source port) until one lands on the other worker.
        var before = Self.accepted(h)
        var served = try #require(h.connect())
        #expect(QueueTests.greeting(served, within: 3000) == "s1")
        var holder = try #require(Self.acceptor(h, since: before))
        var arranged: (waiting: BlockingSocket, waiter: Int)?
        for _ in 0..<30 {
            let mark = probe.count
            let waiting = try #require(h.connect())
            var landedOn: Int?
            #expect(EngineHarness.eventually { landedOn = probe.sleeper(since: mark); return landedOn != nil })
            let waiter = try #require(landedOn)
            if waiter != holder {
                arranged = (waiting, waiter)
                break
            }
            // Same worker: let it take over as the served session and try again.
            before = Self.accepted(h)
            served.close()
            #expect(QueueTests.greeting(waiting, within: 3000) == "s1")
            served = waiting
            holder = try #require(Self.acceptor(h, since: before))
        }
        let (waiting, waiter) = try #require(arranged, "no connection landed on the other worker in 30 tries")
        #expect(h.engine.processSessions.value == 1)

        probe.arm(holder: holder, waiter: waiter)
        served.close()
        #expect(QueueTests.greeting(waiting, within: 3000) == "s1",
                "the connection in worker \(waiter)'s backlog was never accepted")
        #expect(probe.forced, "the interleaving was not the one this test forces")
        waiting.close()
    }

    /// Stalls the first worker other than `holder` that finds a limit full, before it registers to
    /// be woken, until the test has ended a session (closer done, nobody to wake yet).
    final class StallWhenFull: Sendable {
        struct State {
            var log: [AcceptCheckpoint] = []
            var holder = -1
            var stalled: Int?
            var released = false
        }
        let state = Locked(State())

        var stalled: Int? { state.withLock { $0.stalled } }
        func setHolder(_ w: Int) { state.withLock { $0.holder = w } }
        func release() { state.withLock { $0.released = true } }
        var count: Int { state.withLock { $0.log.count } }
        func reserved(by worker: Int, since mark: Int) -> Bool {
            state.withLock { $0.log[mark...].contains(.reserved(worker: worker)) }
        }
        func fullSince(_ mark: Int) -> Int? {
            state.withLock { st in
                for c in st.log[mark...] { if case .full(let w) = c { return w } }
                return nil
            }
        }

        func observe(_ c: AcceptCheckpoint) {
            let stall = state.withLock { st -> Bool in
                st.log.append(c)
                guard case .full(let w) = c, w != st.holder, st.holder >= 0, st.stalled == nil else { return false }
                st.stalled = w
                return true
            }
            if stall { _ = EngineHarness.eventually(3000) { state.withLock { $0.released } } }
        }
    }

    /// A worker finds the process limit full; before it asks to be woken, another worker ends a
    /// session and finds nobody to wake. The worker's own re-check must then see the free slot,
    /// even though an unrelated frontend is at its own maxconn.
    @Test func aSlotFreedJustBeforeAWorkerRegistersIsSeenDespiteAnotherFullFrontend() throws {
        let server = QueueTests.greeter("s1")
        let probe = StallWhenFull()
        let ended = Locked(0)
        let h = try EngineHarness(servers: [server.port], workers: 2, globalMaxconn: 2,
                                  secondFrontendMaxconn: 1,
                                  logger: { r in if r.frontend == 0 { ended.withLock { $0 += 1 } } },
                                  acceptProbe: { probe.observe($0) })
        defer { h.stop(); server.stop() }
        // Frontend 2 at its maxconn of 1, for the whole test.
        let port2 = try #require(h.port2)
        let other = try #require(BlockingSocket.connect(port: port2))
        #expect(QueueTests.greeting(other, within: 3000) == "s1")
        defer { other.close() }
        // The process limit (2) reached through frontend 1.
        var before = Self.accepted(h)
        var served = try #require(h.connect())
        #expect(QueueTests.greeting(served, within: 3000) == "s1")
        var holder = try #require(Self.acceptor(h, since: before))
        #expect(h.engine.processSessions.value == 2)
        var waiting: BlockingSocket?
        for _ in 0..<30 {
            probe.setHolder(holder)
            let mark = probe.count
            let next = try #require(h.connect())
            var fullOn: Int?
            #expect(EngineHarness.eventually { fullOn = probe.fullSince(mark); return fullOn != nil })
            if probe.stalled != nil {
                waiting = next
                break
            }
            // It landed on the holder (not stalled): let it take over the served session.
            before = Self.accepted(h)
            served.close()
            #expect(QueueTests.greeting(next, within: 3000) == "s1")
            served = next
            holder = try #require(Self.acceptor(h, since: before))
        }
        let last = try #require(waiting, "no connection landed on the other worker in 30 tries")
        // The other worker is stalled before registering: end the served session now, and wait
        // until its worker has finished closing it (the session record is the last step).
        let endedBefore = ended.withLock { $0 }
        let closeMark = probe.count
        served.close()
        #expect(EngineHarness.eventually { ended.withLock { $0 } > endedBefore })
        // The holder, woken by its own close, tries its empty backlog and gives the slot back:
        // let that finish too, so only the stalled worker's own re-check can find the slot.
        #expect(EngineHarness.eventually {
            probe.reserved(by: holder, since: closeMark) && h.engine.processSessions.value == 1
        })
        probe.release()
        #expect(QueueTests.greeting(last, within: 3000) == "s1",
                "worker \(probe.stalled ?? -1) slept with a connection in its backlog and a free slot")
        last.close()
    }
}
