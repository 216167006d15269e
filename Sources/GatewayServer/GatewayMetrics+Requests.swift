import GatewayCore
import Prometheus

extension GatewayMetrics {
    /// The duration histograms, at ``durationIndex(route:cache:)``, and the request counters, at
    /// ``counterIndex(durationIndex:statusClass:)``, each made on first use: the label sets are few and known, so an
    /// answer finds its place by a number, without building a string.
    struct RequestMetrics {
        var counters = [Counter?](repeating: nil, count: GatewayMetrics.counterCount)
        var durations = [DurationHistogram?](repeating: nil, count: GatewayMetrics.durationCount)
    }

    /// The answered requests of one thread, kept until ``Tally/capacity`` of them are in or the metrics
    /// are read.
    ///
    /// Counted at once, each answer would increment a counter and lock a duration histogram, both shared
    /// by every event loop: their cache lines would move between cores on every request. A thread tallies
    /// its own answers instead, and hands them on in a batch.
    struct Tally {
        /// How many answers a thread keeps before it hands them on.
        static let capacity = 256

        var counts = [Int](repeating: 0, count: GatewayMetrics.counterCount)
        /// Each answer's time, with the index of its histogram.
        var durations: [(histogram: Int, nanoseconds: UInt64)] = []

        init() { durations.reserveCapacity(Self.capacity) }
    }

    /// Counts one answer and its time.
    func request(route: RouteLabel, status: Int, cache: ResponseTrace.CacheResult, nanoseconds: UInt64) {
        let statusClass = min(5, max(1, status / 100))
        let histogram = Self.durationIndex(route: route, cache: cache)
        let counter = Self.counterIndex(durationIndex: histogram, statusClass: statusClass)
        let full: Tally? = tallies.withLocal { tally in
            tally.counts[counter] += 1
            tally.durations.append((histogram, nanoseconds))
            guard tally.durations.count >= Tally.capacity else { return nil }
            defer { tally = Tally() }
            return tally
        }
        if let full { publish(full) }
    }

    /// Hands every thread's tallied answers to the counters and the histograms: what a scrape reads then
    /// includes every answer finished before. Called by ``update(cache:waiters:governor:sharedTierUp:)``.
    func publishTallies() {
        var taken: [Tally] = []
        tallies.modifyEach { tally in
            guard !tally.durations.isEmpty else { return }
            taken.append(tally)
            tally = Tally()
        }
        for tally in taken { publish(tally) }
    }

    private func publish(_ tally: Tally) {
        let made = requestMetrics.withLock { made in
            for (index, count) in tally.counts.enumerated() where count > 0 && made.counters[index] == nil {
                let (route, statusClass, cache) = Self.labels(ofCounter: index)
                made.counters[index] = registry.makeCounter(
                    descriptor: Family.requests.descriptor,
                    labels: [("route", route.rawValue), ("status", "\(statusClass)xx"), ("cache", cache.rawValue)]
                )
            }
            for sample in tally.durations where made.durations[sample.histogram] == nil {
                let (route, cache) = Self.labels(ofDuration: sample.histogram)
                made.durations[sample.histogram] = registry.makeDurationHistogram(
                    descriptor: Family.requestDuration.descriptor,
                    labels: [("route", route.rawValue), ("cache", cache.rawValue)],
                    buckets: Self.durationBuckets
                )
            }
            return made
        }
        for (index, count) in tally.counts.enumerated() where count > 0 {
            made.counters[index]?.increment(by: Int64(count))
        }
        for sample in tally.durations {
            made.durations[sample.histogram]?.recordNanoseconds(Int64(clamping: sample.nanoseconds))
        }
    }

    private static let routes = RouteLabel.allCases
    private static let cacheResults = ResponseTrace.CacheResult.allCases
    private static let durationCount = routes.count * cacheResults.count
    /// Five status classes for each route and cache result.
    private static let counterCount = durationCount * 5

    private static func durationIndex(route: RouteLabel, cache: ResponseTrace.CacheResult) -> Int {
        routes.firstIndex(of: route)! * cacheResults.count + cacheResults.firstIndex(of: cache)!
    }

    /// The labels whose histogram is at `index`: the inverse of ``durationIndex(route:cache:)``.
    private static func labels(ofDuration index: Int) -> (route: RouteLabel, cache: ResponseTrace.CacheResult) {
        (routes[index / cacheResults.count], cacheResults[index % cacheResults.count])
    }

    /// The index of the counter of `statusClass` (1 to 5) next to the histogram at `durationIndex`.
    private static func counterIndex(durationIndex: Int, statusClass: Int) -> Int {
        durationIndex * 5 + statusClass - 1
    }

    /// The labels whose counter is at `index`: the inverse of ``counterIndex(durationIndex:statusClass:)``.
    private static func labels(
        ofCounter index: Int
    ) -> (route: RouteLabel, statusClass: Int, cache: ResponseTrace.CacheResult) {
        let (route, cache) = labels(ofDuration: index / 5)
        return (route, index % 5 + 1, cache)
    }
}
