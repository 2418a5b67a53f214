import Synchronization
import Testing
@testable import Splicer

/// Who gets a freed slot, without sockets: tickets in a backend's queue and its servers' queues.
@Suite struct QueueDispatchTests {
    /// A backend whose grants are collected in order (slot numbers name the tickets).
    final class Fixture: Sendable {
        let backend: BackendShared
        let route: BackendRoute
        let grants = Locked<[(slot: Int32, server: Int)]>([])

        init(_ n: Int, balance: BalanceAlgorithm = .roundrobin, maxconn: Int = 1, maxqueue: Int = 0) {
            let servers = (0..<n).map { i in
                ServerSpec(name: "s\(i + 1)", address: SocketAddress(ip: "127.0.0.1", port: UInt16(1000 + i))!,
                           maxconn: maxconn, maxqueue: maxqueue)
            }
            let spec = BackendSpec(name: "be", servers: servers, balance: balance)
            backend = BackendShared(index: 0, spec: spec)
            route = RoutingTable.allUp(spec: EngineSpec(workers: 1, frontends: [], backends: [spec])).backends[0]
            backend.deliver = { [unowned self] t in grants.withLock { $0.append((t.slot, t.grantedServer)) } }
        }

        @discardableResult
        func enqueue(_ slot: Int32, bound: Int = -1) -> QueueTicket {
            let t = QueueTicket(worker: 0, backend: 0, slot: slot, generation: 0, boundServer: bound, enqueuedMs: 0)
            backend.enqueue(t, route: route)
            return t
        }

        var granted: [Int32] { grants.withLock { $0.map(\.slot) } }
    }

    @Test func freedSlotsGoToTheOldestWaitingTicket() {
        let f = Fixture(1)
        #expect(f.backend.serverSessions[0].tryAcquire())
        for slot in Int32(1)...3 { f.enqueue(slot) }
        #expect(f.granted.isEmpty)
        #expect(f.backend.queuedInBackend == 3)
        f.backend.releaseServerSlot(0, route: f.route)
        #expect(f.granted == [1])
        f.backend.releaseServerSlot(0, route: f.route)
        f.backend.releaseServerSlot(0, route: f.route)
        #expect(f.granted == [1, 2, 3])
        #expect(f.grants.withLock { $0.allSatisfy { $0.server == 0 } })
        #expect(f.backend.queuedInBackend == 0 && !f.backend.anyWaiting)
        #expect(f.backend.backendQueueHigh.value == 3)
    }

    @Test func aCancelledTicketIsSkippedAndItsSlotPassesOn() {
        let f = Fixture(1)
        #expect(f.backend.serverSessions[0].tryAcquire())
        f.enqueue(1)
        let second = f.enqueue(2)
        f.enqueue(3)
        #expect(f.backend.cancel(second))
        #expect(!f.backend.cancel(second))  // cancelled once only
        #expect(f.backend.queuedInBackend == 2)
        f.backend.releaseServerSlot(0, route: f.route)
        f.backend.releaseServerSlot(0, route: f.route)
        #expect(f.granted == [1, 3])
    }

    @Test func aGrantedTicketCannotBeCancelled() {
        let f = Fixture(1)
        #expect(f.backend.serverSessions[0].tryAcquire())
        let t = f.enqueue(1)
        f.backend.releaseServerSlot(0, route: f.route)
        #expect(f.granted == [1])
        #expect(!f.backend.cancel(t))
    }

    /// Server queues and the backend queue are served oldest first across all of them.
    @Test func serverAndBackendQueuesAreServedInArrivalOrder() {
        let f = Fixture(2)
        #expect(f.backend.serverSessions[0].tryAcquire() && f.backend.serverSessions[1].tryAcquire())
        f.enqueue(1, bound: 0)
        f.enqueue(2)  // any server
        f.enqueue(3, bound: 0)
        f.enqueue(4, bound: 1)
        #expect(f.backend.queued(onServer: 0) == 2 && f.backend.queued(onServer: 1) == 1)
        #expect(f.backend.queuedInBackend == 1)
        // Server 1 frees: its own ticket 4 is younger than the unbound ticket 2, which takes it.
        f.backend.releaseServerSlot(1, route: f.route)
        #expect(f.grants.withLock { $0.map { [Int($0.slot), $0.server] } } == [[2, 1]])
        // Server 0 frees: ticket 1 (bound there, the oldest).
        f.backend.releaseServerSlot(0, route: f.route)
        f.backend.releaseServerSlot(1, route: f.route)
        f.backend.releaseServerSlot(0, route: f.route)
        #expect(f.grants.withLock { $0.map { [Int($0.slot), $0.server] } } == [[2, 1], [1, 0], [4, 1], [3, 0]])
        #expect(!f.backend.anyWaiting)
    }

    @Test func aFullServerQueueOverflowsIntoTheBackendQueue() {
        let f = Fixture(1, balance: .source, maxqueue: 1)
        #expect(f.backend.serverSessions[0].tryAcquire())
        f.enqueue(1, bound: 0)
        f.enqueue(2, bound: 0)
        #expect(f.backend.queued(onServer: 0) == 1 && f.backend.queuedInBackend == 1)
        f.backend.releaseServerSlot(0, route: f.route)
        f.backend.releaseServerSlot(0, route: f.route)
        #expect(f.granted == [1, 2])
    }

    /// Under `balance source` a ticket in the backend queue (its server's queue was full) has no
    /// server of its own: whichever server frees takes it (HAProxy's proxy queue).
    @Test func aBackendQueueTicketTakesAnyFreedServerUnderSource() {
        let f = Fixture(2, balance: .source)
        #expect(f.backend.serverSessions[0].tryAcquire() && f.backend.serverSessions[1].tryAcquire())
        f.enqueue(1)
        f.enqueue(2)
        f.backend.releaseServerSlot(1, route: f.route)
        f.backend.releaseServerSlot(0, route: f.route)
        #expect(f.grants.withLock { $0.map { [Int($0.slot), $0.server] } } == [[1, 1], [2, 0]])
    }
}
