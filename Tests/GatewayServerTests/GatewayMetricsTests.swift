import GatewayCore
import GatewayTesting
import Logging
import Prometheus
import Testing

@testable import GatewayServer

@Suite("GatewayMetrics")
struct GatewayMetricsTests {
    private let registry = PrometheusCollectorRegistry()
    private let metrics: GatewayMetrics

    init() {
        metrics = GatewayMetrics(registry: registry, libcurlVersion: "8.5.0")
    }

    private func scrape() -> String {
        metrics.publishTallies()
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private func update(evictions: Int = 0, entries: Int = 0) {
        var cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 60, staleSeconds: 0).statistics
        cache.evictions = evictions
        cache.entries = entries
        metrics.update(
            cache: cache,
            waiters: 0,
            governor: UpstreamGovernor.Snapshot(inFlight: 0, queued: 0, limit: 4, backoffSecondsLeft: 0)
        )
    }

    /// Every family the gateway exports, with its type: the names dashboards and alerts are written against.
    private static let families: [String: String] = {
        var families = [
            "xi_gateway_build_info": "gauge",
            "xi_gateway_requests_total": "counter",
            "xi_gateway_request_duration_seconds": "histogram",
            "xi_gateway_refused_requests_total": "counter",
            "xi_gateway_upstream_rejections_total": "counter",
            "xi_gateway_upstream_requests_total": "counter",
            "xi_gateway_upstream_duration_seconds": "histogram",
            "xi_gateway_cache_entries": "gauge",
            "xi_gateway_cache_bytes": "gauge",
            "xi_gateway_cache_max_bytes": "gauge",
            "xi_gateway_tls_certificate_expiry_timestamp_seconds": "gauge",
            "xi_gateway_team_budget_per_minute": "gauge",
            "xi_gateway_team_budget_remaining": "gauge",
            "xi_gateway_cache_evictions_total": "counter",
            "xi_gateway_singleflight_waiters": "gauge",
            "xi_gateway_upstream_in_flight": "gauge",
            "xi_gateway_upstream_queue_length": "gauge",
            "xi_gateway_upstream_concurrency_limit": "gauge",
            "xi_gateway_upstream_backoff_remaining_seconds": "gauge",
            "xi_gateway_shared_tier_up": "gauge",
            "xi_gateway_team_requests_total": "counter",
            "xi_gateway_team_hits_total": "counter",
            "xi_gateway_team_upstream_requests_total": "counter",
            "xi_gateway_team_refusals_total": "counter",
        ]
        #if os(Linux)
        families["process_cpu_seconds_total"] = "counter"
        families["process_resident_memory_bytes"] = "gauge"
        families["process_virtual_memory_bytes"] = "gauge"
        families["process_open_fds"] = "gauge"
        families["process_max_fds"] = "gauge"
        families["process_start_time_seconds"] = "gauge"
        #endif
        return families
    }()

    /// With every kind of event counted, each family in a scrape has a `# TYPE` and a `# HELP`, each sample
    /// belongs to a typed family, counters (and only counters) end in `_total`, and the names are the ones
    /// above.
    @Test func everyFamilyHasATypeAndAHelpTextAndCountersEndInTotal() {
        var trace = ResponseTrace()
        trace.cache = .hit
        trace.causedUpstreamRequest = true
        trace.budgetRefused = true
        metrics.request(route: .list, status: 200, cache: .hit, nanoseconds: 1_000)
        metrics.team("alpha", trace: trace)
        metrics.teamBudgets([("alpha", BudgetState(perMinute: 10, remaining: 4, secondsToNext: 6))])
        metrics.refused(.bareLF)
        metrics.upstream(status: 200, outcome: .ok, nanoseconds: 1_000)
        metrics.setTLSCertificateExpiry(secondsSince1970: 1_900_000_000)
        update()
        let exposition = Exposition(scrape())

        #expect(exposition.malformed.isEmpty, "\(exposition.malformed)")
        #expect(exposition.types == Self.families)
        #expect(Set(exposition.helps.keys) == Set(exposition.types.keys))
        for (family, help) in exposition.helps { #expect(help.count >= 10, "\(family): \(help)") }
        for (family, type) in exposition.types {
            #expect(family.hasSuffix("_total") == (type == "counter"), "\(family) is a \(type)")
        }
        for sample in exposition.samples {
            #expect(exposition.types[exposition.family(of: sample)] != nil, "\(sample.name) has no # TYPE")
        }
    }

    /// Before anything happens, a scrape already has every gauge, the build info, the eviction counter,
    /// a refusal counter for every reason and the upstream counters of every failure, at zero.
    @Test func boundedSeriesExistFromTheStartAtZero() {
        let exposition = Exposition(scrape())

        for gauge in [
            "xi_gateway_cache_entries", "xi_gateway_cache_bytes", "xi_gateway_cache_max_bytes",
            "xi_gateway_singleflight_waiters",
            "xi_gateway_upstream_in_flight", "xi_gateway_upstream_queue_length",
            "xi_gateway_upstream_concurrency_limit", "xi_gateway_upstream_backoff_remaining_seconds",
            "xi_gateway_shared_tier_up",
        ] {
            #expect(exposition.value(gauge) == 0, "\(gauge)")
        }
        #expect(exposition.value("xi_gateway_cache_evictions_total") == 0)
        for reason in RefusalReason.allCases {
            #expect(exposition.value("xi_gateway_refused_requests_total", #"reason="\#(reason.rawValue)""#) == 0)
        }
        for outcome in ["timeout", "refused", "error"] {
            #expect(
                exposition.value("xi_gateway_upstream_requests_total", #"status="none",outcome="\#(outcome)""#) == 0
            )
        }
        for reason in ["queue_full", "queue_timeout", "backing_off"] {
            #expect(exposition.value("xi_gateway_upstream_rejections_total", #"reason="\#(reason)""#) == 0)
        }
        #expect(exposition.samples.contains { $0.name == "xi_gateway_build_info" })
    }

    /// The governor's refusals are counted by reason, and with the upstream's answers kept as totals for the
    /// status page (by status, or by outcome when there was none).
    @Test func refusalsOfASlotAreCountedByReasonAndTheStatusPageGetsTotals() {
        metrics.rejected(.queueFull)
        metrics.rejected(.backingOff(secondsLeft: 3))
        metrics.rejected(.backingOff(secondsLeft: 2))
        metrics.upstream(status: 200, outcome: .ok, nanoseconds: 1_000)
        metrics.upstream(status: 429, outcome: .rateLimited, nanoseconds: 1_000)
        metrics.upstream(status: 200, outcome: .ok, nanoseconds: 1_000)
        metrics.upstream(status: nil, outcome: .timeout, nanoseconds: 1_000)
        metrics.upstream(status: 999, outcome: .ok, nanoseconds: 1_000)
        let exposition = Exposition(scrape())

        #expect(exposition.value("xi_gateway_upstream_rejections_total", #"reason="queue_full""#) == 1)
        #expect(exposition.value("xi_gateway_upstream_rejections_total", #"reason="queue_timeout""#) == 0)
        #expect(exposition.value("xi_gateway_upstream_rejections_total", #"reason="backing_off""#) == 2)
        #expect(
            metrics.upstreamTotals
                == .init(
                    exchanges: ["200": 2, "429": 1, "timeout": 1, "other": 1],
                    rejections: ["queue_full": 1, "backing_off": 2]
                )
        )
    }

    /// Each team of the teams file has its series at zero from the start, and a team a reload adds from
    /// that reload: a dashboard or an alert sees it before its first request.
    @Test func everyTeamsSeriesExistFromTheStartAndFromTheReloadThatAddsIt() throws {
        let digest = String(repeating: "a", count: 64)
        func teams(_ names: [String]) throws -> TeamRegistry {
            try TeamRegistry(
                parsing: names.enumerated().map { "\($1) \(String(digest.dropLast(1)))\($0)\n" }.joined(),
                source: "test"
            )
        }
        let fixture = ServiceFixture()
        let context = ServerContext(
            service: fixture.service,
            cache: fixture.cache,
            governor: fixture.governor,
            settings: .init(accessLog: false, adminToken: nil, teams: try teams(["red", "blue"])),
            accessLogger: Logger(label: "test"),
            metrics: metrics
        )
        let families = [
            "xi_gateway_team_requests_total", "xi_gateway_team_hits_total",
            "xi_gateway_team_upstream_requests_total", "xi_gateway_team_refusals_total",
        ]
        var exposition = Exposition(scrape())
        for family in families {
            for team in ["red", "blue"] {
                #expect(exposition.value(family, #"team="\#(team)""#) == 0, "\(family) \(team)")
            }
            #expect(exposition.value(family, #"team="green""#) == nil)
        }

        context.update(.init(accessLog: false, adminToken: nil, teams: try teams(["red", "green"])))
        exposition = Exposition(scrape())
        for family in families {
            #expect(exposition.value(family, #"team="green""#) == 0, "\(family)")
        }
    }

    /// The bound and each budget are what was set or read last.
    @Test func theCacheBoundAndEachTeamsBudgetAreGauges() {
        metrics.setCacheBound(bytes: 67_108_864)
        metrics.teamBudgets([
            ("red", BudgetState(perMinute: 10, remaining: 4, secondsToNext: 6)),
            ("blue", BudgetState(perMinute: 60, remaining: 60, secondsToNext: 0)),
        ])
        metrics.teamBudgets([("red", BudgetState(perMinute: 10, remaining: 3, secondsToNext: 6))])

        let exposition = Exposition(scrape())
        #expect(exposition.value("xi_gateway_cache_max_bytes") == 67_108_864)
        #expect(exposition.value("xi_gateway_team_budget_per_minute", #"team="red""#) == 10)
        #expect(exposition.value("xi_gateway_team_budget_remaining", #"team="red""#) == 3)
        #expect(exposition.value("xi_gateway_team_budget_per_minute", #"team="blue""#) == 60)
        #expect(exposition.value("xi_gateway_team_budget_remaining", #"team="blue""#) == 60)
    }

    @Test func buildInfoNamesTheVersionAndLibcurl() {
        let exposition = Exposition(scrape())

        let labels = #"version="\#(GatewayVersion.current)",libcurl="8.5.0""#
        #expect(exposition.value("xi_gateway_build_info", labels) == 1)
        #expect(exposition.samples.filter { $0.name == "xi_gateway_build_info" }.count == 1)
    }

    /// A label value is written as the exposition format wants it: backslash, double quote and line feed
    /// escaped.
    @Test func buildInfoEscapesItsLabelValues() {
        let registry = PrometheusCollectorRegistry()
        _ = GatewayMetrics(registry: registry, libcurlVersion: "odd \"8\"\\\nversion")
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        let text = String(decoding: bytes, as: UTF8.self)

        #expect(text.contains(#"libcurl="odd \"8\"\\\nversion"} 1.0"#))
    }

    /// Answers are tallied per thread and handed on in batches: a scrape still counts every answer
    /// finished before it, on every thread, whether or not its batch was full.
    @Test func aScrapeCountsEveryAnswerOnEveryThread() throws {
        let metrics = self.metrics
        for _ in 0..<300 { metrics.request(route: .list, status: 200, cache: .hit, nanoseconds: 1_000) }
        try onAnotherThread {
            for _ in 0..<5 { metrics.request(route: .list, status: 200, cache: .hit, nanoseconds: 30_000_000) }
            metrics.request(route: .other, status: 404, cache: .none, nanoseconds: 1_000)
        }
        let text = scrape()

        let listHit = #"route="list",cache="hit""#
        #expect(text.contains(#"xi_gateway_requests_total{route="list",status="2xx",cache="hit"} 305"#))
        #expect(text.contains(#"xi_gateway_requests_total{route="other",status="4xx",cache="none"} 1"#))
        #expect(text.contains("xi_gateway_request_duration_seconds_count{\(listHit)} 305"))
        #expect(text.contains(#"xi_gateway_request_duration_seconds_count{route="other",cache="none"} 1"#))
        #expect(text.contains(#"xi_gateway_request_duration_seconds_bucket{\#(listHit),le="0.025"} 300"#))
        #expect(text.contains(#"xi_gateway_request_duration_seconds_bucket{\#(listHit),le="0.05"} 305"#))
        #expect(text.contains("xi_gateway_request_duration_seconds_sum{\(listHit)} 0.1503"))

        metrics.request(route: .list, status: 200, cache: .hit, nanoseconds: 1_000)
        let again = scrape()
        #expect(again.contains(#"xi_gateway_requests_total{route="list",status="2xx",cache="hit"} 306"#))
        #expect(again.contains("xi_gateway_request_duration_seconds_count{\(listHit)} 306"))
    }

    /// Hits and misses of one route are separate distributions.
    @Test func hitsAndMissesHaveTheirOwnDurationHistograms() {
        metrics.request(route: .list, status: 200, cache: .hit, nanoseconds: 200_000)
        metrics.request(route: .list, status: 200, cache: .miss, nanoseconds: 40_000_000)
        let exposition = Exposition(scrape())

        let count = "xi_gateway_request_duration_seconds_count"
        let bucket = "xi_gateway_request_duration_seconds_bucket"
        #expect(exposition.value(count, #"route="list",cache="hit""#) == 1)
        #expect(exposition.value(count, #"route="list",cache="miss""#) == 1)
        #expect(exposition.value(bucket, #"route="list",cache="hit",le="0.00025""#) == 1)
        #expect(exposition.value(bucket, #"route="list",cache="miss",le="0.025""#) == 0)
        #expect(exposition.value(bucket, #"route="list",cache="miss",le="0.05""#) == 1)
        #expect(exposition.value(count, #"route="list",cache="stale""#) == nil)
    }

    /// Every label set a request can have gets its own counter, named by its own labels.
    @Test func everyRouteStatusAndCacheResultHasItsOwnCounter() {
        var expected: [String] = []
        var times = 1
        for route in GatewayMetrics.RouteLabel.allCases {
            for status in [200, 301, 404, 503] {
                for cache in ResponseTrace.CacheResult.allCases {
                    for _ in 0..<times {
                        metrics.request(route: route, status: status, cache: cache, nanoseconds: 1)
                    }
                    expected.append(
                        "xi_gateway_requests_total{route=\"\(route.rawValue)\",status=\"\(status / 100)xx\","
                            + "cache=\"\(cache.rawValue)\"} \(times)"
                    )
                    times = times % 7 + 1
                }
            }
        }
        let text = scrape()

        for line in expected { #expect(text.contains(line), "\(line)") }
    }

    /// The cache reports its evictions since start; the counter grows by what each scrape finds added,
    /// and a lower reading (an older one, from a scrape that ran alongside) takes nothing away.
    @Test(arguments: [
        ([3, 5, 5, 9], [3.0, 5, 5, 9]),
        ([4, 2, 6], [4.0, 4, 6]),
        ([0, 0, 1], [0.0, 0, 1]),
    ])
    func evictionsGrowByWhatWasAdded(readings: [Int], expected: [Double]) {
        var seen: [Double?] = []
        for evictions in readings {
            update(evictions: evictions)
            seen.append(Exposition(scrape()).value("xi_gateway_cache_evictions_total"))
        }

        #expect(seen == expected)
    }

    @Test func gaugesFollowTheStateAtEachScrape() {
        update(entries: 3)
        #expect(Exposition(scrape()).value("xi_gateway_cache_entries") == 3)
        update(entries: 1)
        #expect(Exposition(scrape()).value("xi_gateway_cache_entries") == 1)
    }
}
