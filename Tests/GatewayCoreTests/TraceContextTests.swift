import Testing

@testable import GatewayCore

@Suite("W3C trace context")
struct TraceContextTests {
    private let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test func aValidTraceparentKeepsItsTraceAndFlagsAndTakesTheGatewaysSpan() throws {
        let trace = try #require(TraceContext(traceparent: valid, spanID: 0xABC))
        #expect(trace.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(trace.flags == 1)
        #expect(trace.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000abc-01")
        let unsampled = try #require(
            TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", spanID: 1)
        )
        #expect(unsampled.traceparent.hasSuffix("-0000000000000001-00"))
    }

    /// A later version is read where it agrees with version 00 (the specification's rule), and sent on as
    /// version 00 with the flags 00 defines.
    @Test func aLaterVersionIsReadAsVersion00() throws {
        let later = try #require(
            TraceContext(
                traceparent: "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-comes-next",
                spanID: 7
            )
        )
        #expect(later.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000007-01")
    }

    @Test(arguments: [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",  // short
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // version 00 is exactly 55 characters
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version ff is invalid
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // all-zero parent id
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // a later version's extra part needs a dash
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
    ])
    func anInvalidTraceparentIsNotRead(_ header: String) {
        #expect(TraceContext(traceparent: header, spanID: 5) == nil)
    }

    @Test func aNewTraceHasNonZeroIdsAndIsNotSampled() {
        var generator = TraceIDGenerator(seed: 42)
        let first = TraceContext.new(using: &generator)
        let second = TraceContext.new(using: &generator)
        #expect(first.traceIDHigh | first.traceIDLow != 0 && first.spanID != 0)
        #expect(first.traceID != second.traceID)
        #expect(first.traceparent.wholeMatch(of: /00-[0-9a-f]{32}-[0-9a-f]{16}-00/) != nil)
        let reread = TraceContext(traceparent: first.traceparent, spanID: 9)
        #expect(reread?.traceID == first.traceID)
    }

    /// Ids from one seed never repeat over many draws (SplitMix64 is a bijection of its counter).
    @Test func theGeneratorDoesNotRepeatItself() {
        var generator = TraceIDGenerator(seed: 0)
        var seen = Set<UInt64>()
        for _ in 0..<100_000 { seen.insert(generator.next()) }
        #expect(seen.count == 100_000)
    }
}
