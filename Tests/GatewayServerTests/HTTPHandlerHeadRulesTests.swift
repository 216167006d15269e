import GatewayCore
import GatewayTesting
import NIOCore
import NIOEmbedded
import Testing

@testable import GatewayServer

/// What the handler refuses from a head before anything else, and what it answers before a body:
/// `Host` (RFC 9112, 3.2), `Expect` (RFC 9110, 10.1.1) and a declared body over the limit.
@Suite("HTTPHandler: Host, Expect and declared bodies")
struct HTTPHandlerHeadRulesTests {
    private let runTests = "/v1/convai/agents/ag_1/run-tests"

    @Test(arguments: [
        "GET /healthz HTTP/1.1\r\n\r\n",
        "GET /v1/convai/test-invocations HTTP/1.1\r\nX-Host: h\r\n\r\n",
        "POST /v1/convai/agents/ag_1/run-tests HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    ])
    func anHTTP11RequestWithoutHostIs400AndCloses(_ request: String) throws {
        let connection = try ConnectionFixture()
        let responses = parseResponses(try connection.exchange(request + "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(responses.map(\.status) == ["HTTP/1.1 400 Bad Request"])
        #expect(responses.first?.headers["connection"] == "close")
        #expect(connection.fixture.upstream.requests.isEmpty)
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!connection.channel.isActive)
    }

    @Test func anHTTP10RequestNeedsNoHost() throws {
        let connection = try ConnectionFixture()
        let responses = parseResponses(try connection.exchange("GET /healthz HTTP/1.0\r\n\r\n"))
        #expect(responses.map(\.status) == ["HTTP/1.0 200 OK"])
    }

    @Test func twoHostFieldsAre400() throws {
        let connection = try ConnectionFixture()
        let responses = parseResponses(try connection.exchange("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"))
        #expect(responses.map(\.status) == ["HTTP/1.1 400 Bad Request"])
    }

    /// Within the limit: `100 Continue` goes out as soon as the head is read, before any of the body, and
    /// the final answer follows the body.
    @Test func aForwardedWriteExpecting100ContinueGetsItBeforeItsBody() throws {
        let connection = try ConnectionFixture()
        let head =
            "POST \(runTests) HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            + "Expect: 100-continue\r\n\r\n"
        let interim = try connection.exchange(head)
        #expect(interim == "HTTP/1.1 100 Continue\r\n\r\n")
        #expect(connection.fixture.upstream.requests.isEmpty)

        connection.channel.send("{}")
        connection.channel.embeddedEventLoop.run()
        let final = parseResponses(try connection.channel.writtenText())
        #expect(final.map(\.status) == ["HTTP/1.1 200 OK"])
        #expect(connection.fixture.upstream.requests.map(\.target) == [runTests])
        #expect(connection.channel.isActive)
    }

    /// Over the limit: `413` at once, before the body is sent, and the connection closes; the body that a
    /// client sends anyway is never read as a request.
    @Test(arguments: [true, false])
    func aForwardedWriteDeclaringTooLargeABodyIs413AtOnce(expectsContinue: Bool) throws {
        let connection = try ConnectionFixture()
        let declared = HTTPConnection.StateMachine.maxForwardedBodyBytes + 1
        let head =
            "POST \(runTests) HTTP/1.1\r\nHost: h\r\nContent-Length: \(declared)\r\n"
            + (expectsContinue ? "Expect: 100-continue\r\n" : "") + "\r\n"
        let responses = parseResponses(try connection.exchange(head))
        #expect(responses.map(\.status) == ["HTTP/1.1 413 Payload Too Large"])
        #expect(responses.first?.headers["connection"] == "close")
        connection.channel.send("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try connection.channel.writtenText().isEmpty)
        #expect(connection.fixture.upstream.requests.isEmpty)
    }

    /// The declared length of any other request's (dropped) body is held to the smaller limit.
    @Test func aListRequestDeclaringTooLargeABodyIs413AtOnce() throws {
        let connection = try ConnectionFixture()
        let responses = parseResponses(
            try connection.exchange(
                "GET /v1/convai/test-invocations HTTP/1.1\r\nHost: h\r\nContent-Length: 70000\r\n\r\n"
            )
        )
        #expect(responses.map(\.status) == ["HTTP/1.1 413 Payload Too Large"])
    }

    @Test(arguments: [
        "Expect: 200-ok\r\n",
        "Expect: 100-continue, foo\r\n",
        "Expect: 100-continue\r\nExpect: 100-continue\r\n",
        "Expect:\r\n",
    ])
    func anyOtherExpectationIs417(_ field: String) throws {
        let connection = try ConnectionFixture()
        let request = "POST \(runTests) HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\(field)\r\n{}"
        let responses = parseResponses(try connection.exchange(request))
        #expect(responses.map(\.status) == ["HTTP/1.1 417 Expectation Failed"])
        #expect(responses.first?.body.contains("expectation_failed") == true)
        #expect(connection.fixture.upstream.requests.isEmpty)
    }

    /// An HTTP/1.0 client's `100-continue` is ignored (RFC 9110, 10.1.1): no interim answer, the request is
    /// answered as usual.
    @Test func anHTTP10ExpectationOf100ContinueIsIgnored() throws {
        let connection = try ConnectionFixture()
        let request =
            "POST \(runTests) HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            + "Expect: 100-continue\r\n\r\n{}"
        connection.channel.send(request)
        connection.channel.embeddedEventLoop.run()
        let output = try connection.channel.writtenText()
        #expect(!output.contains("100 Continue"))
        #expect(parseResponses(output).map(\.status) == ["HTTP/1.0 200 OK"])
    }
}
