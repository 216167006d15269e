import Testing

@testable import GatewayCore

@Suite("CacheStatus: every value the gateway sends")
struct CacheStatusTests {
    @Test(
        arguments: [
            (CacheStatus.hit(ttl: 22), "xi-gateway; hit; ttl=22"),
            (.hit(ttl: 0), "xi-gateway; hit; ttl=0"),
            (.sharedHit(ttl: 7), "xi-gateway; hit; ttl=7; detail=shared"),
            (.stale(staleFor: 1, revalidationFailed: false), "xi-gateway; hit; ttl=-1; detail=stale-while-revalidate"),
            (.stale(staleFor: 10, revalidationFailed: true), "xi-gateway; hit; ttl=-10; detail=stale-if-error"),
            (.fetched(.stored, collapsed: false), "xi-gateway; fwd=miss; fwd-status=200; stored"),
            (.fetched(.stored, collapsed: true), "xi-gateway; fwd=miss; fwd-status=200; stored; collapsed"),
            (.fetched(.ttlZero, collapsed: false), "xi-gateway; fwd=miss; fwd-status=200; detail=ttl-zero"),
            (.fetched(.tooLarge, collapsed: true), "xi-gateway; fwd=miss; fwd-status=200; detail=too-large; collapsed"),
            (.passedOn(status: 503, collapsed: false), "xi-gateway; fwd=miss; fwd-status=503"),
            (.passedOn(status: 404, collapsed: true), "xi-gateway; fwd=miss; fwd-status=404; collapsed"),
            (.failed(detail: "upstream-timeout", collapsed: false), "xi-gateway; fwd=miss; detail=upstream-timeout"),
            (.failed(detail: "bad-gateway", collapsed: true), "xi-gateway; fwd=miss; detail=bad-gateway; collapsed"),
            (.refused(detail: "invalid-query"), "xi-gateway; detail=invalid-query"),
            (.staleOnlyIfCached(staleFor: 8), "xi-gateway; hit; ttl=-8; detail=only-if-cached"),
            (.heldOverBudget(ttl: 25), "xi-gateway; hit; ttl=25; detail=team-budget-spent"),
            (.heldOverBudget(ttl: -4), "xi-gateway; hit; ttl=-4; detail=team-budget-spent"),
            (
                .fetched(.stored, collapsed: true, forward: .request),
                "xi-gateway; fwd=request; fwd-status=200; stored; collapsed"
            ),
            (.passedOn(status: 429, collapsed: false, forward: .request), "xi-gateway; fwd=request; fwd-status=429"),
            (
                .failed(detail: "upstream-timeout", collapsed: false, forward: .request),
                "xi-gateway; fwd=request; detail=upstream-timeout"
            ),
        ]
    )
    func spelling(status: CacheStatus, expected: String) {
        #expect(status.description == expected)
    }

    /// The fast path of a fresh hit writes the prefix and the number: the same text as the slow path.
    @Test(arguments: [0, 1, 29, 86_400])
    func freshHitPrefixMatchesTheDescription(ttl: Int) {
        #expect("\(CacheStatus.freshHitPrefix)\(ttl)" == "Cache-Status: " + CacheStatus.hit(ttl: ttl).description)
    }
}
