import GatewayCore

/// What `GET /admin/status` answers, the status page's one source: the last minute's figures, the state
/// now, and each team's spend. Made from values alone, so its JSON is tested exactly.
struct StatusReport {
    /// One team of `CLIENTS_FILE`, in its order.
    struct Team {
        var name: String
        /// `nil`: unlimited.
        var budgetPerMinute: Int?
        /// What is left of the budget now; `nil` when unlimited.
        var remaining: Int?
        /// Since start, on this replica.
        var total: BudgetCounts
        /// In the last minute, on this replica.
        var lastMinute: BudgetCounts
    }

    var version: String
    /// Seconds since 1970.
    var startedAt: Int
    var uptimeSeconds: Int
    /// What happened in the last minute (``StatusSample/at`` is the span it covers).
    var lastMinute: StatusSample
    var perSecond: [(requests: Int, hits: Int)]
    var cache: ResponseCache.Statistics
    var cacheMaxBytes: Int
    var agents: AgentPages
    var governor: UpstreamGovernor.Snapshot
    var waiters: Int
    /// `up`, `down`, or `off` (no `REDIS_URL`).
    var sharedTier: String
    var teams: [Team]

    /// The report as JSON: numbers as numbers, every key always present.
    var json: String {
        let requests = lastMinute.lookups
        let nanoseconds = lastMinute.at
        let windowSeconds = Int(nanoseconds / 1_000_000_000) + (nanoseconds % 1_000_000_000 >= 500_000_000 ? 1 : 0)
        let statuses = lastMinute.upstream.exchanges.sorted { $0.key < $1.key }
            .map { "\(JSONText.quoted($0.key)):\($0.value)" }
        let rejections = GatewayMetrics.RejectionReason.allCases
            .map { "\"\($0.rawValue)\":\(lastMinute.upstream.rejections[$0.rawValue] ?? 0)" }
        let agentList = agents.agents.map { "{\"agent_id\":\(JSONText.quoted($0.id)),\"pages\":\($0.pages)}" }
        let teamList = teams.map { team in
            "{\"team\":\(JSONText.quoted(team.name)),\"budget_per_minute\":\(Self.number(team.budgetPerMinute)),"
                + "\"remaining\":\(Self.number(team.remaining)),\"spent\":\(team.total.spent),"
                + "\"refused\":\(team.total.refused),\"spent_last_minute\":\(team.lastMinute.spent),"
                + "\"refused_last_minute\":\(team.lastMinute.refused)}"
        }
        return "{\"version\":\(JSONText.quoted(version)),\"started_at\":\(startedAt),"
            + "\"uptime_seconds\":\(uptimeSeconds),"
            + "\"last_minute\":{\"seconds\":\(windowSeconds),\"requests\":\(requests),"
            + "\"hits\":\(lastMinute.hits),\"misses\":\(max(0, requests - lastMinute.hits)),"
            + "\"hit_ratio\":\(requests == 0 ? "null" : Self.decimal(lastMinute.hits, over: requests, places: 4)),"
            + "\"requests_per_second\":\(Self.decimal(requests, over: max(1, windowSeconds), places: 2)),"
            + "\"upstream\":{\(statuses.joined(separator: ","))},"
            + "\"rejections\":{\(rejections.joined(separator: ","))}},"
            + "\"per_second\":{\"requests\":[\(perSecond.map { "\($0.requests)" }.joined(separator: ","))],"
            + "\"hits\":[\(perSecond.map { "\($0.hits)" }.joined(separator: ","))]},"
            + "\"cache\":{\"entries\":\(cache.entries),\"bytes\":\(cache.bytes),\"max_bytes\":\(cacheMaxBytes),"
            + "\"evictions\":\(cache.evictions),\"agents\":[\(agentList.joined(separator: ","))],"
            + "\"more_agents\":\(agents.moreAgents),\"unfiltered_pages\":\(agents.unfiltered)},"
            + "\"upstream\":{\"in_flight\":\(governor.inFlight),\"limit\":\(governor.limit),"
            + "\"queued\":\(governor.queued),\"backoff_seconds_left\":\(governor.backoffSecondsLeft),"
            + "\"singleflight_waiters\":\(waiters)},"
            + "\"shared_tier\":\(JSONText.quoted(sharedTier)),\"teams\":[\(teamList.joined(separator: ","))]}"
    }

    private static func number(_ value: Int?) -> String { value.map { "\($0)" } ?? "null" }

    /// `numerator / denominator` rounded half up to `places` decimals, written without a float (`0.6667`,
    /// `12.5`, `3`).
    static func decimal(_ numerator: Int, over denominator: Int, places: Int) -> String {
        var scale = 1
        for _ in 0..<places { scale *= 10 }
        let scaled = (numerator * scale * 2 + denominator) / (denominator * 2)
        guard places > 0 else { return "\(scaled)" }
        var fraction = String(scaled % scale)
        fraction = String(repeating: "0", count: places - fraction.count) + fraction
        while fraction.last == "0" { fraction.removeLast() }
        return fraction.isEmpty ? "\(scaled / scale)" : "\(scaled / scale).\(fraction)"
    }
}
