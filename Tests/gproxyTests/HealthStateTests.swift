import Testing
@testable import gproxy

/// HAProxy's health counter, check by check (haproxy-semantics.md §3.1-3.2).
@Suite struct HealthStateTests {
    @Test func startsUpOneOfFallAndTheFirstFailureMarksItDown() {
        var h = HealthState(rise: 2, fall: 3, checked: true)
        #expect(h.statusText == "UP 1/3")
        #expect(h.record(passed: false) == .wentDown)
        #expect(h.statusText == "DOWN")
    }

    @Test func exactlyFallFailuresTakeAFullyUpServerDown() {
        var h = HealthState(rise: 2, fall: 3, checked: true)
        #expect(h.record(passed: true) == nil)
        #expect(h.statusText == "UP")
        #expect(h.record(passed: false) == nil)
        #expect(h.statusText == "UP 2/3")
        #expect(h.record(passed: false) == nil)
        #expect(h.statusText == "UP 1/3")
        #expect(h.record(passed: false) == .wentDown)
    }

    @Test func exactlyRiseSuccessesBringItBackAndAFailureResetsTheClimb() {
        var h = HealthState(rise: 3, fall: 2, checked: true, initState: .fullyDown)
        #expect(h.record(passed: true) == nil)
        #expect(h.statusText == "DOWN 1/3")
        #expect(h.record(passed: false) == nil)
        #expect(h.statusText == "DOWN")
        #expect(h.record(passed: true) == nil)
        #expect(h.record(passed: true) == nil)
        #expect(h.statusText == "DOWN 2/3")
        #expect(h.record(passed: true) == .wentUp)
        #expect(h.statusText == "UP")
    }

    @Test(arguments: [
        (InitState.fullyUp, true, "UP"), (.up, true, "UP 1/3"), (.down, false, "DOWN 1/2"), (.fullyDown, false, "DOWN"),
    ])
    func initStates(_ s: InitState, _ running: Bool, _ text: String) {
        let h = HealthState(rise: 2, fall: 3, checked: true, initState: s)
        #expect(h.usable == running)
        #expect(h.statusText == text)
    }

    @Test func definitiveFailureSkipsTheCountdown() {
        var h = HealthState(rise: 2, fall: 3, checked: true, initState: .fullyUp)
        #expect(h.record(passed: false, definitive: true) == .wentDown)
    }

    @Test func intervalsFollowHealth() {
        var h = HealthState(rise: 2, fall: 3, checked: true, initState: .fullyUp)
        #expect(h.interval(inter: 3000, fastinter: 500, downinter: 9000) == 3000)
        _ = h.record(passed: false)
        #expect(h.interval(inter: 3000, fastinter: 500, downinter: 9000) == 500)
        _ = h.record(passed: false)
        _ = h.record(passed: false)
        #expect(h.interval(inter: 3000, fastinter: 500, downinter: 9000) == 9000)
        #expect(h.interval(inter: 3000, fastinter: nil, downinter: nil) == 3000)
    }

    @Test func spreadChecksVariesIntervalsWithinThePercentage() {
        let draws = (0..<500).map { _ in HealthChecker.spread(1000, percent: 20) }
        #expect(draws.allSatisfy { (800...1200).contains($0) })
        #expect(Set(draws).count > 50)
        #expect(HealthChecker.spread(1000, percent: 0) == 1000)
    }

    @Test func maintenanceAndUncheckedTexts() {
        var h = HealthState(rise: 2, fall: 3, checked: false)
        #expect(h.statusText == "no check")
        h.admin = .maint
        #expect(h.statusText == "MAINT")
        #expect(!h.usable)
    }
}

/// Reading check responses as HAProxy does (haproxy-semantics.md §3.5-3.6).
@Suite struct HTTPCheckEvaluatorTests {
    func judge(_ text: String, _ expects: [HTTPCheckExpect] = [], complete: Bool = true) -> CheckResult? {
        HTTPCheckEvaluator.evaluate(Array(text.utf8), expects: expects, complete: complete, durationMs: 1)
    }

    @Test func patroniStatusOnlyRepliesAreJudgedOnTheStatusLine() {
        let ok = judge("HTTP/1.0 200 OK\r\n\r\n", [HTTPCheckExpect(matcher: .status([200...200]))])
        #expect(ok?.status == .l7ok && ok?.code == 200)
        let bad = judge("HTTP/1.0 503 Service Unavailable\r\n\r\n", [HTTPCheckExpect(matcher: .status([200...200]))])
        #expect(bad?.status == .l7status && bad?.code == 503 && bad?.info == "Service Unavailable")
        #expect(bad?.logDetail == "reason: Layer7 wrong status, code: 503, info: \"Service Unavailable\", check duration: 1ms")
    }

    @Test func withoutExpectTwoAndThreeHundredsPass() {
        #expect(judge("HTTP/1.1 301 Moved\r\n\r\n")?.status == .l7ok)
        #expect(judge("HTTP/1.1 404 Not Found\r\n\r\n")?.status == .l7status)
    }

    @Test func garbageEmptyAndUnfinishedHeadersAreInvalid() {
        #expect(judge("GARBAGE\r\n\r\n")?.status == .l7response)
        #expect(judge("")?.status == .l7response)
        #expect(judge("HTTP/1.0 200 OK\r\nX: y\r\n")?.status == .l7response)
        #expect(judge("HTTP/1.0 200 OK\r\nX: y\r\n", complete: false) == nil)
    }

    @Test func expectStringIgnoresTheStatusAndNegationInverts() {
        let s = [HTTPCheckExpect(matcher: .string("running"))]
        #expect(judge("HTTP/1.0 503 x\r\n\r\n{\"state\": \"running\"}", s)?.status == .l7ok)
        #expect(judge("HTTP/1.0 200 OK\r\n\r\n", s)?.info == "HTTP content check could not find a response body")
        let not503 = [HTTPCheckExpect(matcher: .status([503...503]), negated: true)]
        #expect(judge("HTTP/1.0 200 OK\r\n\r\n", not503)?.status == .l7ok)
        #expect(judge("HTTP/1.0 503 no\r\n\r\n", not503)?.status == .l7status)
        let r = [HTTPCheckExpect(matcher: .rstatus("^2"))]
        #expect(judge("HTTP/1.0 301 x\r\n\r\n", r)?.status == .l7status)
    }
}
