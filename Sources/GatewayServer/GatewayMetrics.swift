import CoreMetrics
import GatewayCore
import Synchronization

/// The gateway's metrics, through swift-metrics (the executable exports them in Prometheus's format).
/// Every label value comes from a bounded set: routes, status classes, cache results, outcomes; never an
/// agent id, a cursor or a team.
public final class GatewayMetrics: Sendable {
    /// How an upstream exchange ended, as the metrics name it.
    public enum UpstreamOutcome: String, Sendable, CaseIterable {
        case ok
        case timeout
        case refused
        case rateLimited = "429"
        case error
    }

    /// The routes, as the request metrics name them.
    public enum RouteLabel: String, Sendable, CaseIterable {
        case list
        case passthrough
        case healthz
        case readyz
        case metrics
        case admin
        case other
    }

    private let factory: any MetricsFactory
    /// Counters by their label values, made on first use.
    private let counters = Locked<[String: Counter]>([:])
    /// The request counters, made on first use, at ``requestCounterIndex(route:statusClass:cache:)``: the
    /// label sets are few and known, so a request finds its counter without building a string.
    private let requestCounters: Locked<[Counter?]>
    /// Each thread's answered requests not yet handed to the counters and the histogram.
    private let tallies: PerThread<Tally>
    private let requestDuration: Timer
    private let upstreamDuration: Timer
    private let cacheEntries: Gauge
    private let cacheBytes: Gauge
    private let cacheEvictions: Gauge
    private let flightWaiters: Gauge
    private let governorInFlight: Gauge
    private let governorQueued: Gauge
    private let governorLimit: Gauge
    private let backoffSecondsLeft: Gauge
    private let sharedTierUp: Gauge

    /// Metrics made by `factory`.
    public init(factory: any MetricsFactory) {
        self.factory = factory
        requestDuration = Timer(label: "xi_gateway_request_duration_seconds", dimensions: [], factory: factory)
        upstreamDuration = Timer(label: "xi_gateway_upstream_duration_seconds", dimensions: [], factory: factory)
        cacheEntries = Gauge(label: "xi_gateway_cache_entries", factory: factory)
        cacheBytes = Gauge(label: "xi_gateway_cache_bytes", factory: factory)
        cacheEvictions = Gauge(label: "xi_gateway_cache_evictions", factory: factory)
        flightWaiters = Gauge(label: "xi_gateway_singleflight_waiters", factory: factory)
        governorInFlight = Gauge(label: "xi_gateway_upstream_in_flight", factory: factory)
        governorQueued = Gauge(label: "xi_gateway_upstream_queue_length", factory: factory)
        governorLimit = Gauge(label: "xi_gateway_upstream_concurrency_limit", factory: factory)
        backoffSecondsLeft = Gauge(label: "xi_gateway_upstream_backoff_seconds_left", factory: factory)
        sharedTierUp = Gauge(label: "xi_gateway_shared_tier_up", factory: factory)
        requestCounters = Locked(Array(repeating: nil, count: Self.requestCounterCount))
        tallies = PerThread { Tally() }
    }

    /// The answered requests of one thread, kept until ``Tally/capacity`` of them are in or the metrics
    /// are read.
    ///
    /// Through swift-metrics each answer would increment a counter and lock the duration histogram, both
    /// shared by every event loop: their cache lines would move between cores on every request. A thread
    /// tallies its own answers instead, and hands them on in a batch.
    private struct Tally {
        /// How many answers a thread keeps before it hands them on.
        static let capacity = 256

        var counts = [Int](repeating: 0, count: GatewayMetrics.requestCounterCount)
        var nanoseconds: [UInt64] = []

        init() { nanoseconds.reserveCapacity(Self.capacity) }
    }

    /// Counts one answer and its time.
    func request(route: RouteLabel, status: Int, cache: ResponseTrace.CacheResult, nanoseconds: UInt64) {
        let statusClass = min(5, max(1, status / 100))
        let index = Self.requestCounterIndex(route: route, statusClass: statusClass, cache: cache)
        let full: Tally? = tallies.withLocal { tally in
            tally.counts[index] += 1
            tally.nanoseconds.append(nanoseconds)
            guard tally.nanoseconds.count >= Tally.capacity else { return nil }
            defer { tally = Tally() }
            return tally
        }
        if let full { publish(full) }
    }

    /// Hands every thread's tallied answers to the counters and the histogram: what a scrape reads then
    /// includes every answer finished before. Called by ``update(cache:waiters:governor:)``.
    func publishTallies() {
        var taken: [Tally] = []
        tallies.modifyEach { tally in
            guard !tally.nanoseconds.isEmpty else { return }
            taken.append(tally)
            tally = Tally()
        }
        for tally in taken { publish(tally) }
    }

    private func publish(_ tally: Tally) {
        for (index, count) in tally.counts.enumerated() where count > 0 {
            requestCounter(at: index).increment(by: count)
        }
        for nanoseconds in tally.nanoseconds {
            requestDuration.recordNanoseconds(Int64(clamping: nanoseconds))
        }
    }

    private func requestCounter(at index: Int) -> Counter {
        requestCounters.withLock { counters in
            if let made = counters[index] { return made }
            let (route, statusClass, cache) = Self.labels(ofRequestCounter: index)
            let made = Counter(
                label: "xi_gateway_requests_total",
                dimensions: [("route", route.rawValue), ("status", "\(statusClass)xx"), ("cache", cache.rawValue)],
                factory: factory
            )
            counters[index] = made
            return made
        }
    }

    private static let requestCounterCount = routes.count * 5 * cacheResults.count

    private static func requestCounterIndex(
        route: RouteLabel,
        statusClass: Int,
        cache: ResponseTrace.CacheResult
    ) -> Int {
        let routeIndex = routes.firstIndex(of: route)!
        let cacheIndex = cacheResults.firstIndex(of: cache)!
        return (routeIndex * 5 + statusClass - 1) * cacheResults.count + cacheIndex
    }

    /// The labels whose counter is at `index`: the inverse of ``requestCounterIndex(route:statusClass:cache:)``.
    private static func labels(
        ofRequestCounter index: Int
    ) -> (route: RouteLabel, statusClass: Int, cache: ResponseTrace.CacheResult) {
        let cacheIndex = index % cacheResults.count
        let rest = index / cacheResults.count
        return (routes[rest / 5], rest % 5 + 1, cacheResults[cacheIndex])
    }

    private static let routes = RouteLabel.allCases
    private static let cacheResults = ResponseTrace.CacheResult.allCases

    /// Counts one request of `team` (a name from `CLIENTS_FILE`, so a bounded set): the request, whether
    /// the cache answered it, whether it caused an upstream request, whether its budget refused one.
    func team(_ team: String, trace: ResponseTrace) {
        func count(_ name: String) {
            counter(key: name + "|" + team) {
                Counter(label: name, dimensions: [("team", team)], factory: factory)
            }.increment()
        }
        count("xi_gateway_team_requests_total")
        if trace.cache == .hit || trace.cache == .stale { count("xi_gateway_team_hits_total") }
        if trace.causedUpstreamRequest { count("xi_gateway_team_upstream_requests_total") }
        if trace.budgetRefused { count("xi_gateway_team_refusals_total") }
    }

    /// Counts one upstream exchange and its time.
    /// A request refused before it reached a route (`xi_gateway_refused_requests_total{reason}`).
    func refused(_ reason: RefusalReason) {
        counter(key: "refused|" + reason.rawValue) {
            Counter(
                label: "xi_gateway_refused_requests_total",
                dimensions: [("reason", reason.rawValue)],
                factory: factory
            )
        }.increment()
    }

    func upstream(status: Int?, outcome: UpstreamOutcome, nanoseconds: UInt64) {
        let statusLabel = status.map { (100...599).contains($0) ? String($0) : "other" } ?? "none"
        counter(key: "upstream|" + statusLabel + "|" + outcome.rawValue) {
            Counter(
                label: "xi_gateway_upstream_requests_total",
                dimensions: [("status", statusLabel), ("outcome", outcome.rawValue)],
                factory: factory
            )
        }.increment()
        upstreamDuration.recordNanoseconds(Int64(clamping: nanoseconds))
    }

    /// Hands on the tallied answers and sets the gauges from the current state; called before each scrape.
    /// `sharedTierUp`: whether the shared tier is in use (`nil`: there is none, and the metric stays 0).
    public func update(
        cache: ResponseCache.Statistics,
        waiters: Int,
        governor: UpstreamGovernor.Snapshot,
        sharedTierUp: Bool? = nil
    ) {
        publishTallies()
        cacheEntries.record(cache.entries)
        cacheBytes.record(cache.bytes)
        cacheEvictions.record(cache.evictions)
        flightWaiters.record(waiters)
        governorInFlight.record(governor.inFlight)
        governorQueued.record(governor.queued)
        governorLimit.record(governor.limit)
        backoffSecondsLeft.record(governor.backoffSecondsLeft)
        self.sharedTierUp.record(sharedTierUp == true ? 1 : 0)
    }

    private func counter(key: String, make: () -> Counter) -> Counter {
        if let existing = counters.withLock({ $0[key] }) { return existing }
        let made = make()
        return counters.withLock { counters in
            if let existing = counters[key] { return existing }
            counters[key] = made
            return made
        }
    }
}
