import GatewayCore
import Prometheus

/// The gateway's metrics, made on a Prometheus registry with a help text each (the executable renders the
/// registry for `GET /metrics`). Every label value comes from a bounded set: routes, status classes, cache
/// results, outcomes, refusal reasons, team names; never an agent id, a cursor or a token.
public final class GatewayMetrics: Sendable {
    /// How an upstream exchange ended, as the metrics name it.
    public enum UpstreamOutcome: String, Sendable, CaseIterable {
        case ok
        case timeout
        case refused
        case rateLimited = "429"
        case error
    }

    /// Why the governor gave no upstream slot, as the metrics name it.
    public enum RejectionReason: String, Sendable, CaseIterable {
        case queueFull = "queue_full"
        case queueTimeout = "queue_timeout"
        case backingOff = "backing_off"

        init(_ rejection: UpstreamGovernor.Rejection) {
            switch rejection {
            case .queueFull: self = .queueFull
            case .queueTimeout: self = .queueTimeout
            case .backingOff: self = .backingOff
            }
        }
    }

    /// Upstream exchanges and refusals since start: what the status page subtracts from to show the last
    /// minute's.
    public struct UpstreamTotals: Sendable, Hashable {
        /// Exchanges by status (`"200"`, `"429"`), or by outcome when there was none (`"timeout"`,
        /// `"refused"`, `"error"`).
        public var exchanges: [String: Int] = [:]
        /// Refusals by ``RejectionReason`` raw value.
        public var rejections: [String: Int] = [:]

        public init(exchanges: [String: Int] = [:], rejections: [String: Int] = [:]) {
            self.exchanges = exchanges
            self.rejections = rejections
        }
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

    /// The buckets of the request and upstream duration histograms: 100 µs to 10 s.
    public static let durationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
    ]

    let registry: PrometheusCollectorRegistry
    /// The request counters and duration histograms, made on first use.
    let requestMetrics: Locked<RequestMetrics>
    /// Each thread's answered requests not yet handed to the counters and the histograms.
    let tallies: PerThread<Tally>
    /// The upstream and team counters whose labels are known only when counted, by name and labels.
    private let counters = Locked<[String: Counter]>([:])
    private let refusals: [RefusalReason: Counter]
    /// The upstream counters of the outcomes that never have a status (`status="none"`).
    private let upstreamFailures: [UpstreamOutcome: Counter]
    private let upstreamDuration: DurationHistogram
    private let rejections: [RejectionReason: Counter]
    private let totals = Locked(UpstreamTotals())
    private let cacheEntries: Gauge
    private let cacheBytes: Gauge
    private let cacheMaxBytes: Gauge
    /// The team budget gauges, by family and team.
    private let gauges = Locked<[String: Gauge]>([:])
    private let cacheEvictions: Counter
    /// The cache's eviction count as last read: the counter grows by what the cache adds to it.
    private let evictionsCounted = Locked(0)
    private let flightWaiters: Gauge
    private let governorInFlight: Gauge
    private let governorQueued: Gauge
    private let governorLimit: Gauge
    private let backoffRemaining: Gauge
    private let sharedTierUp: Gauge
    private let process: ProcessMetrics?

    /// Metrics made on `registry`, with `xi_gateway_build_info` naming this version and `libcurlVersion`.
    /// Every gauge and every series of a bounded set that costs little is made at once, at zero, so that
    /// a dashboard sees it before the first event.
    public init(registry: PrometheusCollectorRegistry, libcurlVersion: String) {
        self.registry = registry
        registry.makeGauge(
            descriptor: Family.buildInfo.descriptor,
            labels: [("version", GatewayVersion.current), ("libcurl", libcurlVersion)]
        ).set(to: 1)
        upstreamDuration = registry.makeDurationHistogram(
            descriptor: Family.upstreamDuration.descriptor,
            labels: [],
            buckets: Self.durationBuckets
        )
        cacheEntries = registry.makeGauge(descriptor: Family.cacheEntries.descriptor)
        cacheBytes = registry.makeGauge(descriptor: Family.cacheBytes.descriptor)
        cacheMaxBytes = registry.makeGauge(descriptor: Family.cacheMaxBytes.descriptor)
        cacheEvictions = registry.makeCounter(descriptor: Family.cacheEvictions.descriptor)
        flightWaiters = registry.makeGauge(descriptor: Family.flightWaiters.descriptor)
        governorInFlight = registry.makeGauge(descriptor: Family.upstreamInFlight.descriptor)
        governorQueued = registry.makeGauge(descriptor: Family.upstreamQueueLength.descriptor)
        governorLimit = registry.makeGauge(descriptor: Family.upstreamConcurrencyLimit.descriptor)
        backoffRemaining = registry.makeGauge(descriptor: Family.upstreamBackoffRemaining.descriptor)
        sharedTierUp = registry.makeGauge(descriptor: Family.sharedTierUp.descriptor)
        var refusals: [RefusalReason: Counter] = [:]
        for reason in RefusalReason.allCases {
            refusals[reason] = registry.makeCounter(
                descriptor: Family.refusedRequests.descriptor,
                labels: [("reason", reason.rawValue)]
            )
        }
        self.refusals = refusals
        var upstreamFailures: [UpstreamOutcome: Counter] = [:]
        for outcome in [UpstreamOutcome.timeout, .refused, .error] {
            upstreamFailures[outcome] = registry.makeCounter(
                descriptor: Family.upstreamRequests.descriptor,
                labels: [("status", "none"), ("outcome", outcome.rawValue)]
            )
        }
        self.upstreamFailures = upstreamFailures
        var rejections: [RejectionReason: Counter] = [:]
        for reason in RejectionReason.allCases {
            rejections[reason] = registry.makeCounter(
                descriptor: Family.upstreamRejections.descriptor,
                labels: [("reason", reason.rawValue)]
            )
        }
        self.rejections = rejections
        requestMetrics = Locked(RequestMetrics())
        tallies = PerThread { Tally() }
        process = ProcessMetrics(registry: registry)
    }

    /// The team families' series of each of `teams`, made at zero if not yet there: a dashboard or an alert
    /// sees every team from the start (and from the reload that added it), not from its first request.
    func prepare(teams: [String]) {
        for team in teams {
            for family in [Family.teamRequests, .teamHits, .teamUpstreamRequests, .teamRefusals] {
                _ = counter(key: family.name + "|" + team) {
                    registry.makeCounter(descriptor: family.descriptor, labels: [("team", team)])
                }
            }
        }
    }

    /// The cache's bound (`CACHE_MAX_BYTES`), for a dashboard to draw the bytes held against.
    public func setCacheBound(bytes: Int) {
        cacheMaxBytes.set(Int64(bytes))
    }

    /// When the TLS certificate in force expires (`TLS_CERT_FILE`), set at start and on each reload that
    /// loads a new one; the family does not exist while TLS is off.
    public func setTLSCertificateExpiry(secondsSince1970: Int) {
        let gauge = gauges.withLock { gauges in
            let key = Family.tlsCertificateExpiry.name
            if let existing = gauges[key] { return existing }
            let made = registry.makeGauge(descriptor: Family.tlsCertificateExpiry.descriptor)
            gauges[key] = made
            return made
        }
        gauge.set(Int64(secondsSince1970))
    }

    /// Each team's budget per minute and what is left of it, as read at a scrape (teams with a budget).
    func teamBudgets(_ states: [(team: String, state: BudgetState)]) {
        for (team, state) in states {
            for (family, value) in [(Family.teamBudget, state.perMinute), (.teamBudgetRemaining, state.remaining)] {
                let gauge = gauges.withLock { gauges in
                    let key = family.name + "|" + team
                    if let existing = gauges[key] { return existing }
                    let made = registry.makeGauge(descriptor: family.descriptor, labels: [("team", team)])
                    gauges[key] = made
                    return made
                }
                gauge.set(Int64(value))
            }
        }
    }

    /// Counts one request of `team` (a name from `CLIENTS_FILE`, so a bounded set): the request, whether
    /// the cache answered it, whether it caused an upstream request, whether its budget refused one.
    func team(_ team: String, trace: ResponseTrace) {
        func count(_ family: Family) {
            counter(key: family.name + "|" + team) {
                registry.makeCounter(descriptor: family.descriptor, labels: [("team", team)])
            }.increment()
        }
        count(.teamRequests)
        if trace.cache == .hit || trace.cache == .stale { count(.teamHits) }
        if trace.causedUpstreamRequest { count(.teamUpstreamRequests) }
        if trace.budgetRefused { count(.teamRefusals) }
    }

    /// A request refused before it reached a route (`xi_gateway_refused_requests_total{reason}`).
    func refused(_ reason: RefusalReason) {
        refusals[reason]?.increment()
    }

    /// Counts one request the governor gave no upstream slot.
    func rejected(_ rejection: UpstreamGovernor.Rejection) {
        let reason = RejectionReason(rejection)
        rejections[reason]?.increment()
        totals.withLock { $0.rejections[reason.rawValue, default: 0] += 1 }
    }

    /// The upstream exchanges and refusals counted since start.
    public var upstreamTotals: UpstreamTotals { totals.withLock { $0 } }

    /// Counts one upstream exchange and its time.
    func upstream(status: Int?, outcome: UpstreamOutcome, nanoseconds: UInt64) {
        let total = status.map { (100...599).contains($0) ? String($0) : "other" } ?? outcome.rawValue
        totals.withLock { $0.exchanges[total, default: 0] += 1 }
        if status == nil, let failure = upstreamFailures[outcome] {
            failure.increment()
        } else {
            let statusLabel = status.map { (100...599).contains($0) ? String($0) : "other" } ?? "none"
            counter(key: "upstream|" + statusLabel + "|" + outcome.rawValue) {
                registry.makeCounter(
                    descriptor: Family.upstreamRequests.descriptor,
                    labels: [("status", statusLabel), ("outcome", outcome.rawValue)]
                )
            }.increment()
        }
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
        cacheEntries.set(Int64(cache.entries))
        cacheBytes.set(Int64(cache.bytes))
        // Two scrapes at once may read the statistics in one order and get here in the other: a count
        // below the last one is an older reading, not fewer evictions.
        evictionsCounted.withLock { counted in
            guard cache.evictions > counted else { return }
            cacheEvictions.increment(by: Int64(cache.evictions - counted))
            counted = cache.evictions
        }
        flightWaiters.set(Int64(waiters))
        governorInFlight.set(Int64(governor.inFlight))
        governorQueued.set(Int64(governor.queued))
        governorLimit.set(Int64(governor.limit))
        backoffRemaining.set(Int64(governor.backoffSecondsLeft))
        self.sharedTierUp.set(to: sharedTierUp == true ? 1 : 0)
        process?.update()
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
