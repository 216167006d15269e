import GatewayCore
import GatewayTesting
import NIOHTTP1
import Testing

@testable import GatewayServer

/// The upstream request a client request causes carries its W3C trace (or a new one), and the access log
/// line names the trace.
@Suite("Trace context through the gateway")
struct TraceContextPropagationTests {
    private let list = "/v1/convai/test-invocations"
    private let clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"

    @Test func aClientsTraceGoesUpstreamWithTheGatewaysSpanAndIsLogged() throws {
        let lines = LogLines()
        let connection = try ConnectionFixture(accessLogger: lines.logger())
        let sent = "00-\(clientTrace)-00f067aa0ba902b7-01"
        _ = try connection.exchange(
            "GET \(list)?page_size=3 HTTP/1.1\r\nHost: h\r\ntraceparent: \(sent)\r\ntracestate: vendor=abc,other=1\r\n\r\n"
        )
        let upstream = try #require(connection.fixture.upstream.requests.first)
        let forwarded = try #require(upstream.headers["traceparent"].first)
        #expect(forwarded.hasPrefix("00-\(clientTrace)-"))
        #expect(forwarded.hasSuffix("-01"))
        #expect(!forwarded.contains("00f067aa0ba902b7"), "the gateway's span is the parent, not the client's")
        #expect(upstream.headers["tracestate"] == ["vendor=abc,other=1"])
        #expect(lines.all.first?.contains(#""trace_id":"\#(clientTrace)""#) == true)

        // A hit causes no upstream request; its line still names the client's trace.
        _ = try connection.exchange("GET \(list)?page_size=3 HTTP/1.1\r\nHost: h\r\ntraceparent: \(sent)\r\n\r\n")
        #expect(connection.fixture.upstream.requests.count == 1)
        #expect(lines.all.last?.contains(#""cache":"hit""#) == true)
        #expect(lines.all.last?.contains(#""trace_id":"\#(clientTrace)""#) == true)
    }

    /// Without a `traceparent`, or with one that is not valid, a new trace is made: the upstream request
    /// carries it and the log line names it; a `tracestate` without a valid `traceparent` is dropped.
    @Test(arguments: [
        "", "traceparent: 00-\(String(repeating: "0", count: 32))-00f067aa0ba902b7-01\r\ntracestate: a=b\r\n",
    ])
    func withoutAValidTraceOneIsMade(_ extraHeaders: String) throws {
        let lines = LogLines()
        let connection = try ConnectionFixture(accessLogger: lines.logger())
        _ = try connection.exchange("GET \(list)?page_size=4 HTTP/1.1\r\nHost: h\r\n\(extraHeaders)\r\n")
        let upstream = try #require(connection.fixture.upstream.requests.first)
        let forwarded = try #require(upstream.headers["traceparent"].first)
        let match = try #require(forwarded.wholeMatch(of: /00-([0-9a-f]{32})-[0-9a-f]{16}-00/))
        #expect(match.1 != Substring(String(repeating: "0", count: 32)))
        #expect(upstream.headers["tracestate"].isEmpty)
        #expect(lines.all.first?.contains(#""trace_id":"\#(match.1)""#) == true)
    }

    @Test func aForwardedWriteCarriesTheTraceToo() throws {
        let connection = try ConnectionFixture()
        let sent = "00-\(clientTrace)-00f067aa0ba902b7-00"
        _ = try connection.exchange(
            "POST /v1/convai/agents/a1/run-tests HTTP/1.1\r\nHost: h\r\ntraceparent: \(sent)\r\nContent-Length: 2\r\n\r\n{}"
        )
        let upstream = try #require(connection.fixture.upstream.requests.first)
        #expect(upstream.headers["traceparent"].first?.hasPrefix("00-\(clientTrace)-") == true)
    }

    /// A `tracestate` beyond the specification's 512 bytes, or with control characters, is not passed on.
    @Test func onlyAPassableTracestateIsPassedOn() {
        #expect(Correlation.isPassableTracestate("vendor=abc,other=1"))
        #expect(!Correlation.isPassableTracestate(""))
        #expect(!Correlation.isPassableTracestate(String(repeating: "a", count: 513)))
        #expect(!Correlation.isPassableTracestate("a=b\u{1}"))
    }
}
