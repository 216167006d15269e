import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import GatewayServer

/// The whole per-connection pipeline over an `EmbeddedChannel`: bytes in, bytes out.
struct ConnectionFixture {
    let fixture: ServiceFixture
    let context: ServerContext
    let channel = EmbeddedChannel()

    init(
        fixture: ServiceFixture = ServiceFixture(),
        adminToken: String? = nil,
        teams: TeamRegistry? = nil,
        defaultUpstreamPerMinute: Int? = nil,
        passthrough: Bool = true,
        accessLogger: Logger = Logger(label: "test"),
        metrics: GatewayMetrics? = nil,
        renderMetrics: (@Sendable () -> [UInt8])? = nil,
        role: ListenerRole = .combined
    ) throws {
        self.fixture = fixture
        context = ServerContext(
            service: fixture.service,
            cache: fixture.cache,
            governor: fixture.governor,
            settings: .init(
                accessLog: true,
                adminToken: adminToken.map(Secret.init),
                teams: teams,
                defaultUpstreamPerMinute: defaultUpstreamPerMinute
            ),
            accessLogger: accessLogger,
            metrics: metrics,
            renderMetrics: renderMetrics,
            passthrough: passthrough
                ? PassthroughService(
                    upstream: fixture.upstream,
                    governor: fixture.governor,
                    cache: fixture.cache,
                    budgets: fixture.budgets,
                    key: fixture.service.upstreamKey,
                    logger: Logger(label: "test")
                ) : nil
        )
        try GatewayServer.configurePipeline(
            channel.pipeline.syncOperations,
            configuration: GatewayServer.Configuration(
                host: "127.0.0.1",
                port: 0,
                idleTimeout: .seconds(60),
                role: role
            ),
            context: context
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    /// Sends `text` and returns every byte written back, in order.
    func exchange(_ text: String) throws -> String {
        channel.send(text)
        return try channel.writtenText()
    }
}

/// Splits raw HTTP/1.1 response bytes into (status line, headers, body) by Content-Length.
func parseResponses(
    _ raw: String,
    headRequests: Set<Int> = []
) -> [(status: String, headers: [String: String], body: String)] {
    var responses: [(status: String, headers: [String: String], body: String)] = []
    var rest = Substring(raw)
    while let end = rest.firstRange(of: "\r\n\r\n") {
        let lines = rest[..<end.lowerBound].split(separator: "\r\n")
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            headers[parts[0].lowercased()] = parts.count > 1 ? String(parts[1].drop { $0 == " " }) : ""
        }
        rest = rest[end.upperBound...]
        let length = headRequests.contains(responses.count) ? 0 : Int(headers["content-length"] ?? "0") ?? 0
        let bodyBytes = Array(rest.utf8.prefix(length))
        rest = Substring(String(decoding: rest.utf8.dropFirst(length), as: UTF8.self))
        responses.append((String(lines.first ?? ""), headers, String(decoding: bodyBytes, as: UTF8.self)))
    }
    return responses
}

@Suite("HTTPHandler")
struct HTTPHandlerTests {
    private let list = "/v1/convai/test-invocations"

    @Test func answersPipelinedRequestsInOrderOnOneConnection() throws {
        let connection = try ConnectionFixture()

        let raw = try connection.exchange(
            "GET \(list)?page_size=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET \(list)?page_size=2 HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET \(list)?page_size=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        let responses = parseResponses(raw)

        #expect(responses.count == 3)
        #expect(responses.map(\.status) == Array(repeating: "HTTP/1.1 200 OK", count: 3))
        #expect(responses[0].body == FakeUpstream.page(for: "\(list)?page_size=1"))
        #expect(responses[1].body == FakeUpstream.page(for: "\(list)?page_size=2"))
        #expect(responses[2].headers["cache-status"] == "xi-gateway; hit; ttl=30")
        #expect(connection.channel.isActive)
    }

    /// A connection's request ids: its prefix in hexadecimal, `-`, and the request's number, as
    /// `String(_:radix:)` and `String(_:)` write them.
    @Test func requestIDsAreThePrefixInHexadecimalADashAndTheNumber() {
        for prefix in [0, 1, 0xF, 0x10, 0xABCDEF, 0x1234_5678, UInt32.max] as [UInt32] {
            for sequence in [0, 1, 9, 10, 999_999, 1_000_000, Int.max, -1, Int.min] {
                #expect(
                    Responder.requestID(prefix: prefix, sequence: sequence)
                        == String(prefix, radix: 16) + "-" + String(sequence)
                )
            }
        }
    }

    /// The `Connection` fields of a request, and its version: whether the gateway keeps the connection open
    /// after answering is what NIO's `HTTPRequestHead.isKeepAlive` says of the same head.
    @Test(
        arguments: [
            [], ["close"], ["Close"], ["keep-alive"], ["Keep-Alive"], ["close, keep-alive"], ["keep-alive, close"],
            ["keep-alive", "keep-alive"], ["keep-alive", "close"], ["upgrade , CLOSE"], [" keep-alive ,te"], ["te"],
            ["keep-alive,"], [",close"], ["keepalive"],
        ] as [[String]]
    )
    func keepsTheConnectionOpenWhenNIOWould(connectionFields: [String]) throws {
        for version in [HTTPVersion.http1_0, .http1_1] {
            let connection = try ConnectionFixture()
            let fields = connectionFields.map { "Connection: \($0)\r\n" }.joined()
            let responses = parseResponses(
                try connection.exchange("GET /healthz HTTP/1.\(version.minor)\r\nHost: x\r\n\(fields)\r\n")
            )
            var headers = HTTPHeaders([("Host", "x")])
            for field in connectionFields { headers.add(name: "Connection", value: field) }
            let expected = HTTPRequestHead(version: version, method: .GET, uri: "/healthz", headers: headers)
                .isKeepAlive

            #expect(responses.count == 1)
            #expect(connection.channel.isActive == expected, "HTTP/1.\(version.minor), \(connectionFields)")
            #expect((responses.first?.headers["connection"] == "close") == !expected)
        }
    }

    @Test func closesWhenTheClientAsks() throws {
        let connection = try ConnectionFixture()

        let responses = parseResponses(
            try connection.exchange("GET \(list) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        )

        #expect(responses.first?.headers["connection"] == "close")
        #expect(!connection.channel.isActive)
    }

    @Test func closesAfterAnHTTP10RequestWithoutKeepAlive() throws {
        let connection = try ConnectionFixture()

        let responses = parseResponses(try connection.exchange("GET \(list) HTTP/1.0\r\n\r\n"))

        #expect(responses.first?.status == "HTTP/1.0 200 OK")
        #expect(!connection.channel.isActive)
    }

    @Test func answersHeadWithTheHeadersOfGetAndNoBody() throws {
        let connection = try ConnectionFixture()

        let raw = try connection.exchange(
            "HEAD \(list)?page_size=3 HTTP/1.1\r\nHost: x\r\n\r\nGET \(list)?page_size=3 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        let responses = parseResponses(raw, headRequests: [0])

        #expect(responses.count == 2)
        #expect(responses[0].status == "HTTP/1.1 200 OK")
        #expect(responses[0].body.isEmpty)
        #expect(responses[0].headers["content-length"] == responses[1].headers["content-length"])
        #expect(responses[1].body == FakeUpstream.page(for: "\(list)?page_size=3"))
        #expect(responses[1].headers["cache-status"]?.hasPrefix("xi-gateway; hit") == true)
    }

    @Test func malformedRequestsGet400AndAClosedConnection() throws {
        let connection = try ConnectionFixture()

        let responses = parseResponses(try connection.exchange("GARBAGE\u{1}\r\n\r\n"))

        #expect(responses.first?.status == "HTTP/1.1 400 Bad Request")
        #expect(responses.first?.headers["connection"] == "close")
        #expect(responses.first?.body.contains("\"bad_request\"") == true)
        #expect(!connection.channel.isActive)
        #expect(connection.fixture.upstream.requests.isEmpty)
    }

    @Test func anOversizedHeadGets431AndAClosedConnection() throws {
        let connection = try ConnectionFixture()
        let padding = String(repeating: "a", count: 17 * 1024)

        let responses = parseResponses(
            try connection.exchange("GET \(list) HTTP/1.1\r\nHost: h\r\nX-Pad: \(padding)\r\n\r\n")
        )

        #expect(responses.first?.status == "HTTP/1.1 431 Request Header Fields Too Large")
        #expect(!connection.channel.isActive)
    }

    @Test func anOversizedTargetGets431() throws {
        let connection = try ConnectionFixture()
        let agent = String(repeating: "a", count: 17 * 1024)

        let responses = parseResponses(
            try connection.exchange("GET \(list)?agent_id=\(agent) HTTP/1.1\r\nHost: h\r\n\r\n")
        )

        #expect(responses.first?.status == "HTTP/1.1 431 Request Header Fields Too Large")
        #expect(connection.fixture.upstream.requests.isEmpty)
    }

    @Test func aLargeRequestBodyGets413() throws {
        let connection = try ConnectionFixture()
        let body = String(repeating: "b", count: 70 * 1024)

        let responses = parseResponses(
            try connection.exchange(
                "GET \(list) HTTP/1.1\r\nHost: h\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            )
        )

        #expect(responses.first?.status == "HTTP/1.1 413 Payload Too Large")
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!connection.channel.isActive)
    }

    @Test func otherMethodsOnTheListPathGet405WithAllow() throws {
        let connection = try ConnectionFixture()

        let responses = parseResponses(try connection.exchange("DELETE \(list) HTTP/1.1\r\nHost: x\r\n\r\n"))

        #expect(responses.first?.status == "HTTP/1.1 405 Method Not Allowed")
        #expect(responses.first?.headers["allow"] == "GET, HEAD")
        #expect(responses.first?.headers["cache-status"] == "xi-gateway; detail=method-not-allowed")
        #expect(connection.channel.isActive)
    }

    @Test func otherPathsGet404() throws {
        let connection = try ConnectionFixture()

        let responses = parseResponses(try connection.exchange("GET /v1/voices HTTP/1.1\r\nHost: x\r\n\r\n"))

        #expect(responses.first?.status == "HTTP/1.1 404 Not Found")
        #expect(responses.first?.body == #"{"detail":{"status":"not_found","message":"Not Found"}}"#)
    }

    @Test func absoluteFormTargetsAreRefusedAndNeverForwarded() throws {
        let connection = try ConnectionFixture()

        let responses = parseResponses(
            try connection.exchange("GET http://169.254.169.254\(list) HTTP/1.1\r\nHost: x\r\n\r\n")
        )

        #expect(responses.first?.status == "HTTP/1.1 400 Bad Request")
        #expect(connection.fixture.upstream.requests.isEmpty)
    }

    @Test func closesIdleConnections() throws {
        let connection = try ConnectionFixture()
        _ = try connection.exchange("GET \(list) HTTP/1.1\r\nHost: x\r\n\r\n")

        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(connection.channel.isActive)
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!connection.channel.isActive)
    }

    @Test func closesAClientThatStopsMidHead() throws {
        let connection = try ConnectionFixture()
        _ = try connection.exchange("GET \(list) HTTP/1.1\r\nHost: h\r\nHo")

        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(61))

        #expect(!connection.channel.isActive)
    }
}
