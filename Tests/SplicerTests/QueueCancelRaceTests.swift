import Synchronization
import Testing
@testable import Splicer

/// Cancelling a queued ticket on one worker while another worker queues: everything the cancel
/// reads of the queue itself must be read under the queue lock (run under
/// `swift test --sanitize=thread` to see a regression: ThreadSanitizer reports the data race).
@Suite struct QueueCancelRaceTests {
    @Test func cancellingWhileAnotherWorkerQueuesIsRaceFree() {
        let spec = BackendSpec(name: "be", servers: [
            ServerSpec(name: "s1", address: SocketAddress(ip: "127.0.0.1", port: 1)!, maxconn: 1),
        ])
        let engineSpec = EngineSpec(workers: 2, frontends: [], backends: [spec])
        let route = RoutingTable.allUp(spec: engineSpec).backends[0]
        let backend = BackendShared(index: 0, spec: spec)
        #expect(backend.serverSessions[0].tryAcquire())  // the server is full: every ticket waits
        let total = 2000
        let tickets = (0..<total).map {
            QueueTicket(worker: 0, backend: 0, slot: Int32($0), generation: 0, boundServer: -1, enqueuedMs: 0)
        }
        // How many tickets are queued so far (atomics only: ThreadSanitizer sees through them).
        let published = Progress()
        let producer = NamedThread.start(name: "race-enqueue") {
            for (i, t) in tickets.enumerated() {
                backend.enqueue(t, route: route)
                published.count.store(i + 1, ordering: .releasing)
            }
        }
        // This worker cancels its tickets while the other keeps pushing onto the same queue.
        var cancelled = 0
        while cancelled < total {
            let upTo = published.count.load(ordering: .acquiring)
            while cancelled < upTo {
                #expect(backend.cancel(tickets[cancelled]))
                cancelled += 1
            }
        }
        NamedThread.join(producer)
        #expect(backend.queuedInBackend == 0)
        #expect(!backend.anyWaiting)
    }

    final class Progress: Sendable { let count = Atomic<Int>(0) }
}
