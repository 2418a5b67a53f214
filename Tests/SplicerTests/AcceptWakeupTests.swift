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
        let state = Mutex(State())

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

    /// Which worker accepted since `before` (per-worker frontend session counters).
    static func acceptor(_ h: EngineHarness, since before: [UInt64]) -> Int? {
        let now = h.engine.counterBlocks.map { $0.load(h.engine.layout.frontend(0, .sessions)) }
        return now.indices.first { now[$0] > before[$0] }
    }

    static func accepted(_ h: EngineHarness) -> [UInt64] {
        h.engine.counterBlocks.map { $0.load(h.engine.layout.frontend(0, .sessions)) }
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
}
