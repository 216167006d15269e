import Testing

@testable import GatewayCore

@Suite("Cache-Control request directives")
struct FreshnessDemandTests {
    @Test(
        arguments: [
            ("no-cache", FreshnessDemand(maxAge: 0)),
            ("No-Cache", FreshnessDemand(maxAge: 0)),
            ("max-age=0", FreshnessDemand(maxAge: 0)),
            ("max-age=15", FreshnessDemand(maxAge: 15)),
            ("MAX-AGE = 15", FreshnessDemand(maxAge: 15)),
            (#"max-age="15""#, FreshnessDemand(maxAge: 15)),
            ("max-age=20, max-age=5", FreshnessDemand(maxAge: 5)),
            ("max-age=5, no-cache", FreshnessDemand(maxAge: 0)),
            ("only-if-cached", FreshnessDemand(onlyIfCached: true)),
            (" only-if-cached ,max-age=60", FreshnessDemand(maxAge: 60, onlyIfCached: true)),
            ("max-age=99999999999999999999", FreshnessDemand(maxAge: 1 << 31)),
            ("max-age=-1", FreshnessDemand.none),
            ("max-age=abc", FreshnessDemand.none),
            ("max-age", FreshnessDemand.none),
            ("max-age=", FreshnessDemand.none),
            ("max-stale=10, min-fresh=5, no-store, no-transform, x-ext=\"a,b\"", FreshnessDemand.none),
            ("no-cachex", FreshnessDemand.none),
            ("", FreshnessDemand.none),
            (",,,", FreshnessDemand.none),
        ] as [(String, FreshnessDemand)]
    )
    func parses(_ header: String, expected: FreshnessDemand) {
        #expect(FreshnessDemand(cacheControl: header) == expected)
    }

    @Test func noneIsTheOnlyDemandThatLeavesTheCacheAlone() {
        #expect(FreshnessDemand.none.isNone)
        #expect(!FreshnessDemand(maxAge: 100).isNone)
        #expect(!FreshnessDemand(onlyIfCached: true).isNone)
    }
}
