import NIOHTTP1
import Testing

@testable import GatewayServer

@Suite("Route")
struct RouteTests {
    @Test(
        arguments: [
            (HTTPMethod.GET, "/v1/convai/test-invocations", Route.list(query: "", isHead: false)),
            (.GET, "/v1/convai/test-invocations?page_size=5", .list(query: "page_size=5", isHead: false)),
            (.HEAD, "/v1/convai/test-invocations?a=b", .list(query: "a=b", isHead: true)),
            (.GET, "/v1/convai/test-invocations?", .list(query: "", isHead: false)),
            (.POST, "/v1/convai/test-invocations", .refuse(.methodNotAllowed(allow: "GET, HEAD"))),
            (.DELETE, "/v1/convai/test-invocations?page_size=5", .refuse(.methodNotAllowed(allow: "GET, HEAD"))),
            (.GET, "/healthz", .health(isHead: false)),
            (.HEAD, "/readyz", .readiness(isHead: true)),
            (.GET, "/metrics", .metrics),
            (.POST, "/admin/cache/purge?agent_id=a", .purge(query: "agent_id=a")),
            (.GET, "/admin/cache/purge", .refuse(.methodNotAllowed(allow: "POST"))),
            (.GET, "/admin/cache/stats", .stats),
            (.POST, "/metrics", .refuse(.methodNotAllowed(allow: "GET"))),
            (.GET, "/admin", .refuse(.notFound)),
            (.GET, "/v1/convai/test-invocations/", .refuse(.notFound)),
            (.GET, "/v1/convai/test-invocations/abc", .passthrough(.invocation(idSegment: "abc"), isHead: false)),
            (.POST, "/v1/convai/test-invocations/abc", .refuse(.methodNotAllowed(allow: "GET, HEAD"))),
            (.POST, "/v1/convai/agents/ag_1/run-tests", .passthrough(.runTests(agentSegment: "ag_1"), isHead: false)),
            (.GET, "/v1/convai/agents/ag_1/run-tests", .refuse(.methodNotAllowed(allow: "POST"))),
            (.POST, "/v1/convai/test-invocations/i/resubmit", .passthrough(.resubmit(idSegment: "i"), isHead: false)),
            (.POST, "/v1/convai/agents/a%2Fb/run-tests", .refuse(.notFound)),
            (.GET, "/v1/convai/test-invocations/a/b", .refuse(.notFound)),
            (.GET, "/", .refuse(.notFound)),
            (.POST, "/nowhere", .refuse(.notFound)),
            (.GET, "http://evil.example/v1/convai/test-invocations", .refuse(.notOriginForm)),
            (.GET, "*", .refuse(.notOriginForm)),
            (.GET, "", .refuse(.notOriginForm)),
        ]
    )
    func routes(method: HTTPMethod, uri: String, expected: Route) {
        #expect(Route(method: method, uri: uri) == expected)
    }

    /// Beside an admin listener, the API listener serves no metrics and no admin API, whatever the method:
    /// 404, never 405, so it does not even tell that they exist.
    @Test(
        arguments: [
            (HTTPMethod.GET, "/metrics"), (.POST, "/metrics"), (.GET, "/admin/cache/stats"),
            (.POST, "/admin/cache/purge"), (.GET, "/admin/cache/purge?agent_id=a"), (.DELETE, "/admin/cache/stats"),
        ]
    )
    func theAPIListenerHasNoOperationsBeyondHealth(method: HTTPMethod, uri: String) {
        #expect(Route(method: method, uri: uri, role: .api) == .refuse(.notFound))
        #expect(Route(method: method, uri: uri, role: .admin) != .refuse(.notFound))
    }

    /// The admin listener serves no API route: a team that reaches it by mistake cannot spend the key.
    @Test(
        arguments: [
            (HTTPMethod.GET, "/v1/convai/test-invocations"), (.POST, "/v1/convai/test-invocations"),
            (.GET, "/v1/convai/test-invocations/abc"), (.POST, "/v1/convai/agents/ag_1/run-tests"),
            (.POST, "/v1/convai/test-invocations/i/resubmit"),
        ]
    )
    func theAdminListenerHasNoAPIRoutes(method: HTTPMethod, uri: String) {
        #expect(Route(method: method, uri: uri, role: .admin) == .refuse(.notFound))
        #expect(Route(method: method, uri: uri, role: .api) == Route(method: method, uri: uri))
    }

    /// Health and readiness are on every listener: probes may use either port.
    @Test(arguments: [ListenerRole.api, .admin, .combined])
    func healthAndReadinessAreEverywhere(role: ListenerRole) {
        #expect(Route(method: .GET, uri: "/healthz", role: role) == .health(isHead: false))
        #expect(Route(method: .HEAD, uri: "/readyz", role: role) == .readiness(isHead: true))
    }
}
