import GatewayCore
import GatewayShared
import GatewayTesting
import Synchronization
import Testing

/// When a replica uses the shared tier, when it works alone, and how it comes back: on a clock the test
/// moves.
@Suite("SharedTierHealth")
struct SharedTierHealthTests {
    struct Failure: Error {}

    let clock = ManualClock()
    let lines = LogLines()
    let changes = Locked<[Bool]>([])

    private func health() -> SharedTierHealth {
        let changes = changes
        return SharedTierHealth(
            clock: clock,
            firstRetry: .milliseconds(250),
            longestRetry: .seconds(5),
            logger: lines.logger(label: "xi-gateway"),
            onChange: { isUp in changes.withLock { $0.append(isUp) } }
        )
    }

    @Test func upUntilAFailureThenOneProbeAtATimeAtDoublingIntervalsUpToFiveSeconds() {
        let health = health()
        #expect(health.isUp && health.shouldTry() && health.shouldTry(), "up: every caller uses Redis")
        health.failed(Failure())
        #expect(!health.isUp)
        #expect(!health.shouldTry(), "no probe before the first retry")
        var intervals: [Double] = []
        for _ in 0..<8 {
            var waited = 0.0
            while !health.shouldTry() {
                clock.advance(seconds: 0.05)
                waited += 0.05
            }
            #expect(!health.shouldTry(), "one probe at a time")
            intervals.append((waited * 20).rounded() / 20)
            health.failed(Failure())
        }
        #expect(intervals == [0.25, 0.25, 0.5, 1, 2, 4, 5, 5])
        #expect(changes.withLock { $0 } == [false], "reported once, however many failures")
        #expect(health.failures == 9)
    }

    @Test func aSuccessfulProbeBringsItBackAndTheNextFailureStartsFromTheFirstInterval() {
        let health = health()
        health.failed(Failure())
        clock.advance(seconds: 0.25)
        #expect(health.shouldTry())
        health.failed(Failure())
        clock.advance(seconds: 0.5)
        #expect(health.shouldTry())
        health.succeeded()
        #expect(health.isUp)
        health.succeeded()
        health.failed(Failure())
        #expect(!health.shouldTry())
        clock.advance(seconds: 0.25)
        #expect(health.shouldTry(), "the interval starts again from the first")
        #expect(changes.withLock { $0 } == [false, true, false])
    }

    @Test func eachChangeOfStateIsLoggedOnce() {
        let health = health()
        for _ in 0..<3 { health.failed(Failure()) }
        clock.advance(seconds: 10)
        _ = health.shouldTry()
        health.succeeded()
        health.succeeded()
        let logged = lines.all.joined(separator: "\n")
        #expect(logged.ranges(of: "shared tier is down").count == 1)
        #expect(logged.ranges(of: "shared tier is up again").count == 1)
    }
}
