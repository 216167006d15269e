import GatewayCore
import NIOCore
import NIOHTTP1

/// Answers the operations endpoints: health, readiness, metrics and the admin API. None of them touches
/// the upstream.
struct OperationsEndpoints {
    let context: ServerContext

    /// `GET /healthz`: 200 while the process serves.
    func health() -> GatewayResponse {
        json(#"{"status":"ok"}"#)
    }

    /// `GET /readyz`: 200 once serving, 503 while shutting down.
    func readiness() -> GatewayResponse {
        context.isReady ? json(#"{"status":"ready"}"#) : GatewayError.notReady.response()
    }

    /// `GET /metrics`: the Prometheus text format.
    func metrics() -> GatewayResponse {
        guard let render = context.renderMetrics else { return GatewayError.notFound.response() }
        context.metrics?.update(
            cache: context.cache.statistics,
            waiters: context.service.flightStatistics.waiters,
            governor: context.governor.snapshot,
            sharedTierUp: context.sharedTier?.isUp
        )
        context.metrics?.teamBudgets(budgetStates())
        return GatewayResponse(
            status: .ok,
            headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]),
            body: ByteBuffer(bytes: render())
        )
    }

    /// `POST /admin/cache/purge[?agent_id=X]`: drops that agent's pages and those without an agent filter
    /// (which include that agent's invocations), or every page.
    func purge(query: Substring, authorization: String?) -> GatewayResponse {
        if let refusal = authorize(authorization) { return refusal }
        let pairs: [(name: String, value: String)]
        do {
            pairs = try FormDecoder.decode(query)
        } catch {
            return GatewayError.malformedQuery(error).response()
        }
        if let unknown = pairs.first(where: { $0.name != "agent_id" }) {
            return GatewayError.badRequest("unknown parameter \(unknown.name); only agent_id is taken").response()
        }
        let purged = context.cache.invalidate(agent: pairs.last?.value)
        return json("{\"purged\":\(purged)}")
    }

    /// `GET /admin/cache/stats`. `open`: asked on the admin listener, where reading needs no token.
    func stats(authorization: String?, open: Bool = false) -> GatewayResponse {
        if !open, let refusal = authorize(authorization) { return refusal }
        let cache = context.cache.statistics
        let lookups = context.service.lookupStatistics
        let governor = context.governor.snapshot
        let ratio = lookups.lookups == 0 ? 0 : Double(lookups.hits) / Double(lookups.lookups)
        let ratioText = String(Double(Int(ratio * 10_000)) / 10_000)
        let shared = context.sharedTier.map { $0.isUp ? "up" : "down" } ?? "off"
        return json(
            "{\"entries\":\(cache.entries),\"bytes\":\(cache.bytes),\"evictions\":\(cache.evictions),"
                + "\"lookups\":\(lookups.lookups),\"hits\":\(lookups.hits),\"hit_ratio\":\(ratioText),"
                + "\"singleflight_waiters\":\(context.service.flightStatistics.waiters),"
                + "\"governor\":{\"in_flight\":\(governor.inFlight),\"queued\":\(governor.queued),"
                + "\"limit\":\(governor.limit),\"backoff_seconds_left\":\(governor.backoffSecondsLeft)},"
                + "\"shared_tier\":\"\(shared)\",\"teams\":\(teams())}"
        )
    }

    /// How many agents the status report lists, those with the most pages first.
    static let listedAgents = 20

    /// `GET /admin/status` (admin listener only): the status page's figures, the last minute's among them,
    /// as JSON. Never cached by a browser.
    func status() -> GatewayResponse {
        // Read under the history's lock: a sample the sampler records meanwhile would be newer than `current`.
        let (current, lastMinute, perSecond) = context.statusHistory.withLock { history in
            let current = context.statusSample()
            return (current, history.lastMinute(upTo: current), history.perSecond)
        }
        let settings = context.currentSettings
        let ledger = context.service.budgetLedger
        let budgetCounts = current.teams
        let teams = (settings.teams?.teams ?? []).map { team in
            let perMinute = team.upstreamPerMinute ?? settings.defaultUpstreamPerMinute
            return StatusReport.Team(
                name: team.name,
                budgetPerMinute: perMinute,
                remaining: perMinute.map { ledger.state(team: team.name, perMinute: $0).remaining },
                total: budgetCounts[team.name] ?? BudgetCounts(),
                lastMinute: lastMinute.teams[team.name] ?? BudgetCounts()
            )
        }
        let now = SystemCacheClock().secondsSince1970()
        let report = StatusReport(
            version: GatewayVersion.current,
            startedAt: context.startedAt,
            uptimeSeconds: max(0, now - context.startedAt),
            lastMinute: lastMinute,
            perSecond: perSecond,
            cache: context.cache.statistics,
            cacheMaxBytes: context.cache.maxBytes,
            agents: context.cache.pagesByAgent(limit: Self.listedAgents),
            governor: context.governor.snapshot,
            waiters: context.service.flightStatistics.waiters,
            sharedTier: context.sharedTier.map { $0.isUp ? "up" : "down" } ?? "off",
            teams: teams
        )
        var response = json(report.json)
        response.headers.add(name: "Cache-Control", value: "no-store")
        response.headers.add(name: "X-Content-Type-Options", value: "nosniff")
        return response
    }

    /// The budget of each team that has one, as it stands now.
    private func budgetStates() -> [(team: String, state: BudgetState)] {
        let settings = context.currentSettings
        guard let registry = settings.teams else { return [] }
        let ledger = context.service.budgetLedger
        return registry.teams.compactMap { team in
            (team.upstreamPerMinute ?? settings.defaultUpstreamPerMinute).map {
                (team.name, ledger.state(team: team.name, perMinute: $0))
            }
        }
    }

    /// Each team of `CLIENTS_FILE`, in its order: its budget per minute (`null`: unlimited), what is left of
    /// it now, and the upstream requests it spent and was refused on this replica since start. Team names are
    /// 1 to 64 of `A-Z a-z 0-9 . _ -`, so they need no escaping.
    private func teams() -> String {
        let settings = context.currentSettings
        guard let registry = settings.teams else { return "{}" }
        let ledger = context.service.budgetLedger
        let counts = ledger.counts
        let entries = registry.teams.map { team -> String in
            let perMinute = team.upstreamPerMinute ?? settings.defaultUpstreamPerMinute
            let counted = counts[team.name] ?? BudgetCounts()
            let budget = perMinute.map { "\($0)" } ?? "null"
            let remaining = perMinute.map { "\(ledger.state(team: team.name, perMinute: $0).remaining)" } ?? "null"
            return "\"\(team.name)\":{\"budget_per_minute\":\(budget),\"remaining\":\(remaining),"
                + "\"spent\":\(counted.spent),\"refused\":\(counted.refused)}"
        }
        return "{" + entries.joined(separator: ",") + "}"
    }

    /// `nil` when the request may use the admin API; otherwise the answer (404 while the API is off).
    private func authorize(_ authorization: String?) -> GatewayResponse? {
        guard let token = context.currentSettings.adminToken else { return GatewayError.notFound.response() }
        guard let authorization, authorization.hasPrefix("Bearer "),
            token.matches(authorization.dropFirst("Bearer ".count))
        else { return GatewayError.unauthorized.response() }
        return nil
    }

    private func json(_ text: String) -> GatewayResponse {
        GatewayResponse(
            status: .ok,
            headers: HTTPHeaders([("Content-Type", "application/json")]),
            body: ByteBuffer(string: text)
        )
    }
}
