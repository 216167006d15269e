import Benchmark
import GatewayCore

/// The SHA-256 of a team's token, which the gateway computes on every request when teams are set up: the
/// gateway's digest (swift-crypto's) against the hand-written one it replaced, on a token as `new-token`
/// makes them and on a shorter one.
func tokenDigestBenchmarks(configuration: Benchmark.Configuration) {
    let tokens = [
        ("xgt_ + 64 hex", "xgt_3b9a0593f90ef53f6cc425996fd3d7437c9e0f56671d0fe33c68d64c13e3c67e"),
        ("xi_ + 43 base64url", "xi_Qbc64p8_cpvh0reslOOsAB_ArqiDtYR0BkoS3Dg02Pc"),
    ]
    for (shape, token) in tokens {
        precondition(SHA256.hash(token.utf8) == HandWrittenSHA256.hash(token.utf8), "the two digests differ")
        Benchmark("Token SHA-256, hand-written, \(shape)", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(HandWrittenSHA256.hash(token.utf8))
            }
        }
        Benchmark("Token SHA-256, swift-crypto (the gateway's), \(shape)", configuration: configuration) {
            benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(SHA256.hash(token.utf8))
            }
        }
    }
}
