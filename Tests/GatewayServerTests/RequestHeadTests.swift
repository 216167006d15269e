import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayServer

@Suite("RequestHead")
struct RequestHeadTests {
    /// A head over `fields` (each line ending in CR LF, as the reader keeps them).
    private func head(_ fields: String) -> RequestHead {
        RequestHead(
            method: .GET,
            uri: "/",
            version: .http1_1,
            isKeepAlive: true,
            fieldLines: ByteBuffer(string: fields)
        )
    }

    @Test func aFieldIsFoundWhateverTheCaseOfItsNameAndWithoutTheWhitespaceAroundItsValue() {
        let found = head("Host: x\r\nX-REQUEST-ID: \t abc-1 \t\r\nxi-api-key:k\r\n")
        #expect(found.first(name: "x-request-id") == "abc-1")
        #expect(found.first(name: "xi-api-key") == "k")
        #expect(found.first(name: "host") == "x")
    }

    @Test func theFirstOfARepeatedFieldIsFound() {
        #expect(
            head("Authorization: Bearer one\r\nauthorization: Bearer two\r\n").first(name: "authorization")
                == "Bearer one"
        )
    }

    /// A list field sent on several lines is one value, its lines joined with commas (RFC 9110, 5.3).
    @Test func aListFieldOnSeveralLinesIsJoined() {
        let found = head("Cache-Control: max-age=60\r\nHost: x\r\ncache-control: no-cache \r\nTracestate: a=1\r\n")
        #expect(found.joined(name: "cache-control") == "max-age=60,no-cache")
        #expect(found.joined(name: "tracestate") == "a=1")
        #expect(found.joined(name: "traceparent") == nil)
    }

    @Test func onlyTheWholeNameMatches() {
        let other = head("X-Request-Id-Extra: no\r\nX-Request: no\r\nContent-Type:\r\n")
        #expect(other.first(name: "x-request-id") == nil)
        #expect(other.first(name: "content-type") == "")
        #expect(head("").first(name: "host") == nil)
    }

    @Test func allFieldsReadBackInOrderAsNIOHeaders() {
        let fields = head("Host: x\r\nAccept:  */* \r\nX-Two: a\r\nx-two: b\r\n")
        #expect(
            fields.headers.map { [$0.name, $0.value] } == [
                ["Host", "x"], ["Accept", "*/*"], ["X-Two", "a"], ["x-two", "b"],
            ]
        )
        #expect(fields.nioHead.uri == "/")
        #expect(fields.nioHead.headers[canonicalForm: "x-two"] == ["a", "b"])
    }
}
