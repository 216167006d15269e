import GatewayCore
import GatewayTesting
import Prometheus
import Testing

@testable import GatewayServer

@Suite("GatewayMetrics")
struct GatewayMetricsTests {
    private func scrape(_ metrics: GatewayMetrics, _ registry: PrometheusCollectorRegistry) -> String {
        metrics.publishTallies()
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Answers are tallied per thread and handed on in batches: a scrape still counts every answer
    /// finished before it, on every thread, whether or not its batch was full.
    @Test func aScrapeCountsEveryAnswerOnEveryThread() throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(factory: PrometheusMetricsFactory(registry: registry))

        for _ in 0..<300 { metrics.request(route: .list, status: 200, cache: .hit, nanoseconds: 1_000) }
        try onAnotherThread {
            for _ in 0..<5 { metrics.request(route: .list, status: 200, cache: .hit, nanoseconds: 30_000_000) }
            metrics.request(route: .other, status: 404, cache: .none, nanoseconds: 1_000)
        }
        let text = scrape(metrics, registry)

        #expect(text.contains(#"xi_gateway_requests_total{route="list",status="2xx",cache="hit"} 305"#))
        #expect(text.contains(#"xi_gateway_requests_total{route="other",status="4xx",cache="none"} 1"#))
        #expect(text.contains("xi_gateway_request_duration_seconds_count 306"))
        #expect(text.contains(#"xi_gateway_request_duration_seconds_bucket{le="0.025"} 301"#))
        #expect(text.contains(#"xi_gateway_request_duration_seconds_bucket{le="0.05"} 306"#))
        #expect(text.contains("xi_gateway_request_duration_seconds_sum 0.150301"))

        metrics.request(route: .list, status: 200, cache: .hit, nanoseconds: 1_000)
        let again = scrape(metrics, registry)
        #expect(again.contains(#"xi_gateway_requests_total{route="list",status="2xx",cache="hit"} 306"#))
        #expect(again.contains("xi_gateway_request_duration_seconds_count 307"))
    }

    /// Every label set a request can have gets its own counter, named by its own labels.
    @Test func everyRouteStatusAndCacheResultHasItsOwnCounter() {
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(factory: PrometheusMetricsFactory(registry: registry))
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
        let text = scrape(metrics, registry)

        for line in expected { #expect(text.contains(line), "\(line)") }
    }
}
