import Prometheus

extension GatewayMetrics {
    /// A metric family the gateway exports: its name and its `# HELP` text. Names follow Prometheus's
    /// conventions: counters end in `_total`, and a unit, in base units, comes last.
    struct Family: Sendable {
        let name: String
        let help: String

        /// The name and help as the registry takes them.
        var descriptor: MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        }

        static let buildInfo = Family(
            name: "xi_gateway_build_info",
            help: "Always 1; the labels name the gateway's version and the libcurl it runs with."
        )
        static let requests = Family(
            name: "xi_gateway_requests_total",
            help: "Requests answered, by route, status class and cache result."
        )
        static let requestDuration = Family(
            name: "xi_gateway_request_duration_seconds",
            help: "Time taken to answer requests, by route and cache result."
        )
        static let refusedRequests = Family(
            name: "xi_gateway_refused_requests_total",
            help: "Requests refused before they reached a route, by the rule that refused them."
        )
        static let upstreamRequests = Family(
            name: "xi_gateway_upstream_requests_total",
            help: "Requests sent upstream (list pages and forwarded writes), by status and outcome."
        )
        static let upstreamDuration = Family(
            name: "xi_gateway_upstream_duration_seconds",
            help: "Time of each upstream exchange, from its slot being given to its end."
        )
        static let cacheEntries = Family(
            name: "xi_gateway_cache_entries",
            help: "Pages held in the in-memory cache."
        )
        static let cacheBytes = Family(
            name: "xi_gateway_cache_bytes",
            help: "Bytes of the pages held in the in-memory cache."
        )
        static let cacheEvictions = Family(
            name: "xi_gateway_cache_evictions_total",
            help: "Pages the in-memory cache dropped to stay within its size."
        )
        static let flightWaiters = Family(
            name: "xi_gateway_singleflight_waiters",
            help: "Requests waiting for another request's upstream exchange of the same page."
        )
        static let upstreamRejections = Family(
            name: "xi_gateway_upstream_rejections_total",
            help: "Requests the governor gave no upstream slot, by reason: queue_full, queue_timeout, or "
                + "backing_off (after a 429)."
        )
        static let upstreamInFlight = Family(
            name: "xi_gateway_upstream_in_flight",
            help: "Upstream exchanges in progress."
        )
        static let upstreamQueueLength = Family(
            name: "xi_gateway_upstream_queue_length",
            help: "Requests waiting for an upstream slot."
        )
        static let upstreamConcurrencyLimit = Family(
            name: "xi_gateway_upstream_concurrency_limit",
            help: "Upstream exchanges allowed at once (the configured limit, or the upstream's own if lower; "
                + "FALLBACK_MAX_CONCURRENCY while the shared tier is down)."
        )
        static let upstreamBackoffRemaining = Family(
            name: "xi_gateway_upstream_backoff_remaining_seconds",
            help: "Seconds until the upstream is asked again after a 429 (0: not backing off)."
        )
        static let sharedTierUp = Family(
            name: "xi_gateway_shared_tier_up",
            help: "1 while the shared tier (Redis) is in use, else 0 (down, or none configured)."
        )
        static let teamRequests = Family(
            name: "xi_gateway_team_requests_total",
            help: "Requests of each team."
        )
        static let teamHits = Family(
            name: "xi_gateway_team_hits_total",
            help: "Requests of each team answered from the cache (fresh or stale)."
        )
        static let teamUpstreamRequests = Family(
            name: "xi_gateway_team_upstream_requests_total",
            help: "Upstream requests caused by each team's requests, spent from its budget."
        )
        static let teamRefusals = Family(
            name: "xi_gateway_team_refusals_total",
            help: "Requests of each team whose upstream request its budget refused."
        )
        static let teamBudget = Family(
            name: "xi_gateway_team_budget_per_minute",
            help: "Each team's upstream budget, in requests per minute (teams with a budget only)."
        )
        static let teamBudgetRemaining = Family(
            name: "xi_gateway_team_budget_remaining",
            help: "What is left of each team's upstream budget now, across replicas with a shared tier."
        )
        static let tlsCertificateExpiry = Family(
            name: "xi_gateway_tls_certificate_expiry_timestamp_seconds",
            help: "When the listeners' TLS certificate (TLS_CERT_FILE) expires, in seconds since 1970; "
                + "only while TLS is on."
        )
        static let cacheMaxBytes = Family(
            name: "xi_gateway_cache_max_bytes",
            help: "The cache's memory bound, CACHE_MAX_BYTES."
        )
    }
}
