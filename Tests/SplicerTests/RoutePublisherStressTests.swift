import Splicer
import Synchronization
import Testing

/// The routing-table swap under contention: readers on two threads load the current table on every
/// "connection" while a writer publishes new ones. Run in CI under `--sanitize=thread` as well.
@Suite struct RoutePublisherStressTests {
    static func spec(servers: Int) -> EngineSpec {
        let s = (0..<servers).map { ServerSpec(name: "s\($0)", address: SocketAddress(ip: "127.0.0.1", port: 1)!) }
        return EngineSpec(workers: 1, frontends: [], backends: [BackendSpec(name: "b", servers: s)])
    }

    @Test func readersNeverSeeATornOrOlderTable() {
        let spec = Self.spec(servers: 4)
        // Generation g has exactly (g % 4) + 1 eligible servers, the initial one included.
        let initial = (0..<4).map { ServerRuntimeState(running: $0 == 0, weight: 1) }
        let publisher = RoutePublisher(RoutingTable(generation: 0, spec: spec, states: [initial]))
        let failures = Atomic<Int>(0)
        let done = Atomic<Bool>(false)
        let readers = (0..<2).map { _ in
            NamedThread.start(name: "test-reader") {
                var cache = RouteCache(publisher)
                var last: UInt64 = 0
                var loads = 0
                while !done.load(ordering: .acquiring) || loads < 1000 {
                    cache.refresh()
                    let t = cache.table
                    let b = t.backends[0]
                    if t.generation < last || b.eligibleServers.count != Int(t.generation % 4) + 1
                        || b.schedule.count != b.eligibleServers.count {
                        failures.add(1, ordering: .relaxed)
                    }
                    last = t.generation
                    loads += 1
                }
            }
        }
        for g in 1...20_000 {
            let up = g % 4 + 1
            let states = (0..<4).map { ServerRuntimeState(running: $0 < up, weight: 1) }
            publisher.publish(RoutingTable(generation: UInt64(g), spec: spec, states: [states]))
        }
        done.store(true, ordering: .releasing)
        for r in readers { NamedThread.join(r) }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(publisher.load().generation == 20_000)
    }

    @Test func weightedScheduleInterleavesByWeight() {
        let schedule = RoutingTable.schedule([0, 1, 2], [3, 1, 2]).map(Int.init)
        #expect(schedule.count == 6)
        #expect(schedule.filter { $0 == 0 }.count == 3)
        #expect(schedule.filter { $0 == 2 }.count == 2)
        // Never the same server three times in a row.
        var longestRun = 1
        var run = 1
        for i in 1..<schedule.count {
            run = schedule[i] == schedule[i - 1] ? run + 1 : 1
            longestRun = max(longestRun, run)
        }
        #expect(longestRun < 3)
        #expect(RoutingTable.schedule([0, 1, 2], [1, 1, 1]) == [0, 1, 2])
    }
}
