import GatewayCore
import NIOCore
import NIOEmbedded
import Testing

@testable import GatewayServer

private let second: UInt64 = 1_000_000_000

/// A sample `seconds` after start, with `lookups` requests of which `hits` were hits.
private func sample(_ seconds: UInt64, _ lookups: Int, _ hits: Int, ok: Int = 0, spent: Int = 0) -> StatusSample {
    StatusSample(
        at: seconds * second,
        lookups: lookups,
        hits: hits,
        upstream: .init(exchanges: ok > 0 ? ["200": ok] : [:]),
        teams: ["blue": BudgetCounts(spent: spent, refused: 0)]
    )
}

@Suite("StatusHistory: the status page's last minute")
struct StatusHistoryTests {
    /// Younger than a minute: the figures count from start, and the chart's seconds before the first sample
    /// are zero.
    @Test func beforeAMinuteEverythingCountsFromStart() {
        var history = StatusHistory(origin: StatusSample(at: 0))
        history.record(sample(1, 10, 4))
        history.record(sample(2, 25, 14, ok: 3, spent: 3))

        let minute = history.lastMinute(upTo: sample(2, 30, 18, ok: 4, spent: 4))
        #expect(minute.at == 2 * second)
        #expect(minute.lookups == 30)
        #expect(minute.hits == 18)
        #expect(minute.upstream.exchanges == ["200": 4])
        #expect(minute.teams["blue"] == BudgetCounts(spent: 4, refused: 0))

        let series = history.perSecond
        #expect(series.count == StatusHistory.windowSeconds)
        #expect(series.dropLast(2).allSatisfy { $0 == (0, 0) })
        #expect(series.suffix(2).map { [$0.requests, $0.hits] } == [[10, 4], [15, 10]])
    }

    /// Older than a minute: the figures are those of the last 60 seconds, and the chart shows the last 60
    /// one-second steps.
    @Test func afterAMinuteOnlyTheLastSixtySecondsCount() {
        var history = StatusHistory(origin: StatusSample(at: 0))
        // Second n has n requests, of which n / 2 hits; the counters sum them.
        var lookups = 0
        var hits = 0
        for n in 1...100 {
            lookups += n
            hits += n / 2
            history.record(sample(UInt64(n), lookups, hits, ok: n))
        }
        #expect(history.samples.count == 61)

        let minute = history.lastMinute(upTo: sample(100, lookups, hits, ok: 100))
        #expect(minute.at == 60 * second)
        #expect(minute.lookups == (41...100).reduce(0, +))
        #expect(minute.hits == (41...100).map { $0 / 2 }.reduce(0, +))
        #expect(minute.upstream.exchanges == ["200": 60])

        let series = history.perSecond
        #expect(series.map(\.requests) == Array(41...100))
        #expect(series.map(\.hits) == (41...100).map { $0 / 2 })
    }

    /// The newest sample at least a minute old is the baseline, however the samples were spaced.
    @Test func theBaselineIsTheNewestSampleAMinuteOld() {
        var history = StatusHistory(origin: StatusSample(at: 0))
        for (at, lookups) in [(10, 5), (50, 20), (70, 30), (95, 31)] as [(UInt64, Int)] {
            history.record(sample(at, lookups, 0))
        }
        #expect(history.lastMinute(upTo: sample(112, 40, 0)).lookups == 40 - 20)
        #expect(history.lastMinute(upTo: sample(112, 40, 0)).at == 62 * second)
        var young = StatusHistory(origin: StatusSample(at: 0))
        young.record(sample(10, 5, 0))
        young.record(sample(50, 20, 0))
        #expect(young.lastMinute(upTo: sample(55, 25, 0)).lookups == 25, "younger than a minute: from start")
    }

    /// A reading taken just before the sampler recorded a newer sample (the two run on different threads)
    /// never takes that sample as its baseline, and a step never has more hits than lookups.
    @Test func aSampleNewerThanTheReadingIsNeverTheBaseline() {
        var history = StatusHistory(origin: StatusSample(at: 0))
        for n in UInt64(1)...70 { history.record(sample(n, Int(n) * 10, Int(n) * 5)) }
        let reading = StatusSample(at: 70 * second - 1000, lookups: 699, hits: 349)
        let minute = history.lastMinute(upTo: reading)
        #expect(minute.lookups == 699 - 100, "from the sample at 10 s, the newest a minute before the reading")
        #expect(minute.at == 60 * second - 1000)

        let ahead = StatusSample(at: 5, lookups: 10, hits: 20).since(StatusSample(at: 9, lookups: 5, hits: 0))
        #expect(ahead.at == 0)
        #expect(ahead.hits == 5, "never more hits than lookups")
    }

    /// Every listener of a process starts the sampler on one context; it samples once a second until the
    /// last of them stops it.
    @Test func theSamplerRunsUntilTheLastListenerStopsIt() throws {
        let connection = try ConnectionFixture()
        let loop = EmbeddedEventLoop()
        let context = connection.context
        let before = context.statusHistory.withLock { $0.samples.count }
        context.startStatusSampler(on: loop)
        context.startStatusSampler(on: loop)
        loop.advanceTime(by: .seconds(2))
        #expect(context.statusHistory.withLock { $0.samples.count } == before + 2)
        context.stopStatusSampler()
        loop.advanceTime(by: .seconds(1))
        #expect(context.statusHistory.withLock { $0.samples.count } == before + 3, "one listener still serves")
        context.stopStatusSampler()
        loop.advanceTime(by: .seconds(3))
        #expect(context.statusHistory.withLock { $0.samples.count } == before + 3)
        try loop.syncShutdownGracefully()
    }

    /// A counter that went down (which the gateway's never do) gives zero, not a negative figure; a status
    /// or a team seen only now counts all it has.
    @Test func differencesAreNeverNegative() {
        let earlier = StatusSample(
            at: 0,
            lookups: 10,
            hits: 9,
            upstream: .init(exchanges: ["200": 5, "502": 1], rejections: ["queue_full": 2]),
            teams: ["blue": BudgetCounts(spent: 5, refused: 1)]
        )
        let later = StatusSample(
            at: 3 * second,
            lookups: 8,
            hits: 9,
            upstream: .init(exchanges: ["200": 7, "502": 1, "429": 1], rejections: ["queue_full": 2]),
            teams: ["blue": BudgetCounts(spent: 4, refused: 3), "red": BudgetCounts(spent: 2, refused: 0)]
        )
        let step = later.since(earlier)
        #expect(step.at == 3 * second)
        #expect(step.lookups == 0)
        #expect(step.hits == 0)
        #expect(step.upstream.exchanges == ["200": 2, "429": 1])
        #expect(step.upstream.rejections == [:])
        #expect(step.teams == ["blue": BudgetCounts(spent: 0, refused: 2), "red": BudgetCounts(spent: 2, refused: 0)])
    }
}
