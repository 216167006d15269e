import Testing

@testable import GatewayServer

@Suite("AccessLogTarget: what of a target the access log writes")
struct AccessLogTargetTests {
    @Test(arguments: [
        ("/v1/convai/test-invocations", GatewayMetrics.RouteLabel.list, "/v1/convai/test-invocations"),
        (
            "/v1/convai/test-invocations?page_size=5&agent_id=a", .list,
            "/v1/convai/test-invocations?page_size=5&agent_id=a"
        ),
        ("/l?page_size=5&xi-api-key=sk_1", .list, "/l?page_size=5&xi-api-key=***"),
        ("/l?token=sk_1&cursor=c", .list, "/l?token=***&cursor=c"),
        ("/l?sk_bare", .list, "/l?***"),
        ("/l?PAGE_SIZE=sk_1", .list, "/l?PAGE_SIZE=***"),
        ("/l?page%5Fsize=sk_1", .list, "/l?page%5Fsize=***"),
        ("/l?agent_id=a&&x=", .list, "/l?agent_id=a&&x=***"),
        ("/healthz?token=sk_1", .healthz, "/healthz"),
        ("/v1/convai/test-invocations/abc?x=sk_1", .passthrough, "/v1/convai/test-invocations/abc"),
        ("/admin/cache/purge?agent_id=a", .admin, "/admin/cache/purge"),
    ])
    func logged(target: String, route: GatewayMetrics.RouteLabel, expected: String) {
        #expect(AccessLogTarget.logged(target, route: route) == expected)
    }
}
