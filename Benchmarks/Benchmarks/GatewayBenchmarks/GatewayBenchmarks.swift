import Benchmark
import GatewayCore
import GatewayServer

/// The hot paths of a request for a cached page: reading its head, its query, naming its cache entry, the
/// cache, and all of it at once through a connection's handlers; and the digest of a team's token.
let benchmarks: @Sendable () -> Void = {
    // Each measured iteration runs its body a thousand times; figures are per call.
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo
    )
    let typical: Substring = "agent_id=agent_123&page_size=30"
    let needsDecoding: Substring = "search=two+words&cursor=abc%3D%3D&page_size=007"

    Benchmark("ListQuery.parse typical", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try ListQuery.parse(typical))
        }
    }

    Benchmark("ListQuery.parse decoding", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try ListQuery.parse(needsDecoding))
        }
    }

    Benchmark("ListQuery.canonicalQuery", configuration: configuration) { benchmark, query in
        for _ in benchmark.scaledIterations {
            blackHole(query.canonicalQuery)
        }
    } setup: {
        try ListQuery.parse(needsDecoding)
    }

    Benchmark("ResponseCache.lookup hit, 10k pages", configuration: configuration) { benchmark, fixture in
        for _ in benchmark.scaledIterations {
            blackHole(fixture.cache.lookup(fixture.nextKey()))
        }
    } setup: {
        CacheFixture.lookupsThatHit(pageCount: 10_000)
    }

    Benchmark("ResponseCache.store new, 10k pages full", configuration: configuration) { benchmark, fixture in
        for _ in benchmark.scaledIterations {
            blackHole(fixture.cache.store(fixture.page, for: fixture.nextKey()))
        }
    } setup: {
        CacheFixture.storesThatEvict(pageCount: 10_000)
    }

    Benchmark("RequestDecoder, one GET head", configuration: configuration) { benchmark, fixture in
        for _ in benchmark.scaledIterations {
            blackHole(try fixture.decode())
        }
    } setup: {
        try DecoderFixture()
    }

    Benchmark("A hit through a connection's handlers", configuration: configuration) { benchmark, fixture in
        for _ in benchmark.scaledIterations {
            blackHole(try fixture.hit())
        }
    } setup: {
        try PipelineFixture()
    }

    Benchmark("A gzip client's hit through a connection's handlers", configuration: configuration) {
        benchmark,
        fixture in
        for _ in benchmark.scaledIterations {
            blackHole(try fixture.hit())
        }
    } setup: {
        try PipelineFixture(acceptEncoding: "gzip, deflate, br")
    }

    tokenDigestBenchmarks(configuration: configuration)
}
