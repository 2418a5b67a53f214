import Testing
@testable import Splicer

/// Session timers: one deadline-ordered list per distinct duration.
@Suite struct TimerListTests {
    @Test func equalDurationsShareAListAndNilHasNone() {
        var t = TimerLists()
        let a = t.list(for: 100), b = t.list(for: 250), c = t.list(for: 100)
        #expect(a == c && a != b)
        #expect(t.list(for: nil) == -1)
    }

    @Test func timeoutIsTheNearestDeadlineOverEveryList() {
        var t = TimerLists()
        let long = t.list(for: 500), short = t.list(for: 50)
        t.ensureCapacity(4)
        #expect(t.timeout(now: 0) == -1)
        t.arm(0, list: long, now: 1000)
        t.arm(1, list: short, now: 1100)
        #expect(t.timeout(now: 1100) == 50)
        #expect(t.timeout(now: 1149) == 1)
        #expect(t.timeout(now: 1200) == 0)  // overdue: do not sleep
    }

    @Test func expiredSlotsPopInDeadlineOrderAndOnlyOnce() {
        var t = TimerLists()
        let l = t.list(for: 100), m = t.list(for: 30)
        t.ensureCapacity(4)
        t.arm(0, list: l, now: 0)    // due 100
        t.arm(1, list: l, now: 10)   // due 110
        t.arm(2, list: m, now: 50)   // due 80
        #expect(t.popExpired(now: 79) == nil)
        var popped: [Int32] = []
        while let s = t.popExpired(now: 105) { popped.append(s) }
        #expect(Set(popped) == [0, 2])
        #expect(t.popExpired(now: 109) == nil)
        #expect(t.popExpired(now: 110) == 1)
        #expect(t.popExpired(now: 1000) == nil)
        #expect(t.timeout(now: 1000) == -1)
    }

    @Test func rearmingMovesASlotBehindTheOthers() {
        var t = TimerLists()
        let l = t.list(for: 100)
        t.ensureCapacity(3)
        t.arm(0, list: l, now: 0)
        t.arm(1, list: l, now: 10)
        t.arm(0, list: l, now: 20)  // activity on slot 0: due 120 now
        #expect(t.timeout(now: 20) == 90)  // slot 1 (due 110) is the head
        #expect(t.popExpired(now: 115) == 1)
        #expect(t.popExpired(now: 115) == nil)
        #expect(t.popExpired(now: 120) == 0)
    }

    @Test func disarmingAndMovingBetweenLists() {
        var t = TimerLists()
        let l = t.list(for: 100), m = t.list(for: 10)
        t.ensureCapacity(3)
        t.arm(0, list: l, now: 0)
        t.arm(1, list: l, now: 0)
        t.arm(2, list: l, now: 0)
        t.disarm(1)  // from the middle of the list
        t.disarm(1)  // twice is harmless
        t.arm(2, list: m, now: 0)  // to another list
        t.arm(0, list: -1, now: 0)  // -1 only disarms
        #expect(t.timeout(now: 0) == 10)
        #expect(t.popExpired(now: 100) == 2)
        #expect(t.popExpired(now: 100) == nil)
    }
}
