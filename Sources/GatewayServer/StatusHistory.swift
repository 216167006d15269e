import GatewayCore

/// The gateway's counters as read at one moment: what the status page subtracts to show a second or a
/// minute. Every figure counts up from start.
public struct StatusSample: Sendable, Hashable {
    /// When it was read, in nanoseconds of a monotonic clock.
    public var at: UInt64
    /// Valid list requests that looked in the cache.
    public var lookups: Int
    /// Of those, the ones a page answered (fresh or stale).
    public var hits: Int
    /// Upstream exchanges and refusals.
    public var upstream: GatewayMetrics.UpstreamTotals
    /// Each team's upstream spends and budget refusals.
    public var teams: [String: BudgetCounts]

    public init(
        at: UInt64,
        lookups: Int = 0,
        hits: Int = 0,
        upstream: GatewayMetrics.UpstreamTotals = .init(),
        teams: [String: BudgetCounts] = [:]
    ) {
        self.at = at
        self.lookups = lookups
        self.hits = hits
        self.upstream = upstream
        self.teams = teams
    }

    /// What happened between `earlier` and this sample. Never negative: a count that went down gives zero,
    /// and never more hits than lookups.
    func since(_ earlier: StatusSample) -> StatusSample {
        func difference(_ now: [String: Int], _ then: [String: Int]) -> [String: Int] {
            now.reduce(into: [:]) { result, entry in
                let grown = entry.value - (then[entry.key] ?? 0)
                if grown > 0 { result[entry.key] = grown }
            }
        }
        let lookups = max(0, self.lookups - earlier.lookups)
        return StatusSample(
            at: at > earlier.at ? at - earlier.at : 0,
            lookups: lookups,
            // A page from the shared tier counts its hit after its lookup: a step may see the hit alone.
            hits: min(lookups, max(0, hits - earlier.hits)),
            upstream: .init(
                exchanges: difference(upstream.exchanges, earlier.upstream.exchanges),
                rejections: difference(upstream.rejections, earlier.upstream.rejections)
            ),
            teams: teams.reduce(into: [:]) { result, entry in
                let then = earlier.teams[entry.key] ?? BudgetCounts()
                result[entry.key] = BudgetCounts(
                    spent: max(0, entry.value.spent - then.spent),
                    refused: max(0, entry.value.refused - then.refused)
                )
            }
        )
    }
}

/// The last minute of samples, one a second: the status page's chart, and its figures for the last minute
/// from the moment it opens. A sampler adds a sample each second whether or not anyone looks, so nothing
/// is counted on the request path for it: the counters it reads exist already.
public struct StatusHistory: Sendable {
    /// The seconds the chart and the "last minute" figures cover.
    public static let windowSeconds = 60

    /// Oldest first; at most `windowSeconds + 1`, so the oldest is a minute before the newest.
    private(set) var samples: [StatusSample] = []
    /// The zero everything counts from before the first minute is full: the counters at start.
    private let origin: StatusSample

    /// A history starting at `origin` (the counters when the gateway started: zero, at its start time).
    public init(origin: StatusSample) {
        self.origin = origin
    }

    /// Adds `sample`, dropping the samples more than a minute older.
    public mutating func record(_ sample: StatusSample) {
        samples.append(sample)
        if samples.count > Self.windowSeconds + 1 { samples.removeFirst(samples.count - Self.windowSeconds - 1) }
    }

    /// What happened from a minute before `current` to it (from start, while the gateway is younger than a
    /// minute); its ``StatusSample/at`` is the span covered.
    public func lastMinute(upTo current: StatusSample) -> StatusSample {
        let window = UInt64(Self.windowSeconds) * 1_000_000_000
        let baseline =
            samples.last { $0.at <= current.at && current.at - $0.at >= window } ?? samples.first.flatMap {
                samples.count > Self.windowSeconds ? $0 : nil
            } ?? origin
        return current.since(baseline)
    }

    /// The list requests and hits of each of the last `windowSeconds` seconds, oldest first: zero for the
    /// seconds before the first sample.
    public var perSecond: [(requests: Int, hits: Int)] {
        // Once a minute is full, its oldest sample is only where the first second starts.
        let points = samples.count > Self.windowSeconds ? samples : [origin] + samples
        let series = zip(points, points.dropFirst()).map { earlier, later in
            let step = later.since(earlier)
            return (requests: step.lookups, hits: step.hits)
        }
        let recent = series.suffix(Self.windowSeconds)
        return Array(repeating: (0, 0), count: Self.windowSeconds - recent.count) + recent
    }
}
