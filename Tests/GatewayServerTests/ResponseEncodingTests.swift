import GatewayCore
import GatewayTesting
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import GatewayServer

/// What the bytes of `write` are, as text.
private func written(_ write: (inout ByteBuffer) -> Void) -> String {
    var buffer = ByteBuffer()
    write(&buffer)
    return String(buffer: buffer)
}

/// What `write` appends through a head writer given room to spare.
private func headWritten(_ write: (inout HeadWriter) -> Void) -> String {
    written { $0.writeHead(maximumBytes: 64 * 1024, write) }
}

/// The `tchar` of RFC 9110, section 5.6.2, spelled out independently of the code under test.
private let tokenCharacters = Set(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8
)

@Suite("Response encoding")
struct ResponseEncodingTests {
    @Test(
        arguments: [
            (HTTPVersion.http1_1, HTTPResponseStatus.ok, "HTTP/1.1 200 OK\r\n"),
            (.http1_0, .notFound, "HTTP/1.0 404 Not Found\r\n"),
            (.http1_1, .serviceUnavailable, "HTTP/1.1 503 Service Unavailable\r\n"),
            (.http1_1, .custom(code: 599, reasonPhrase: "Odd"), "HTTP/1.1 599 Odd\r\n"),
            (HTTPVersion(major: 2, minor: 0), .noContent, "HTTP/2.0 204 No Content\r\n"),
        ]
    )
    func theStatusLineNamesVersionCodeAndReason(version: HTTPVersion, status: HTTPResponseStatus, line: String) {
        #expect(headWritten { $0.appendStatusLine(version: version, status: status) } == line)
    }

    @Test(
        arguments: [
            ("Content-Type", "application/json", "Content-Type: application/json\r\n"),
            ("retry-after", "2", "retry-after: 2\r\n"),
            ("X-Empty", "", "X-Empty: \r\n"),
            ("X-Tab", "a\tb", "X-Tab: a\tb\r\n"),
            ("X-Spaces", "a b  c", "X-Spaces: a b  c\r\n"),
            ("X-UTF8", "caf\u{E9} \u{212A}", "X-UTF8: caf\u{E9} \u{212A}\r\n"),
            ("!#$%&'*+-.^_`|~", "x", "!#$%&'*+-.^_`|~: x\r\n"),
        ]
    )
    func anAllowedHeaderIsWrittenAsNameColonValue(name: String, value: String, expected: String) {
        #expect(headWritten { $0.appendHeader(name: name, value: value) } == expected)
    }

    @Test(
        arguments: [
            ("", "value"),
            ("Two Words", "value"),
            ("Name:", "value"),
            ("X-Caf\u{E9}", "value"),
            ("(comment)", "value"),
            ("X\r\nSet-Cookie", "x"),
            ("Retry-After", "2\r\nSet-Cookie: x"),
            ("Retry-After", "2\rSet-Cookie: x"),
            ("Retry-After", "2\nSet-Cookie: x"),
            ("Retry-After", "2\u{0}"),
            ("Retry-After", "2\u{7F}"),
            ("Retry-After", "2\u{1B}[31m"),
        ]
    )
    func aHeaderWithAForbiddenNameOrValueIsLeftOut(name: String, value: String) {
        #expect(headWritten { $0.appendHeader(name: name, value: value) }.isEmpty)
    }

    /// One bad header costs only itself: the others are written, in order.
    @Test func headersAreWrittenInOrderWithoutTheForbiddenOnes() {
        let headers = HTTPHeaders([
            ("Content-Type", "application/json"),
            ("retry-after", "2\r\nSet-Cookie: session=stolen"),
            ("Bad Name", "x"),
            ("maximum-concurrent-requests", "4"),
            ("retry-after", "3"),
        ])

        #expect(
            headWritten { head in for (name, value) in headers { head.appendHeader(name: name, value: value) } }
                == "Content-Type: application/json\r\nmaximum-concurrent-requests: 4\r\nretry-after: 3\r\n"
        )
    }

    @Test func noHeadersWriteNothing() {
        #expect(
            headWritten { head in for (name, value) in HTTPHeaders() { head.appendHeader(name: name, value: value) } }
                .isEmpty
        )
    }

    @Test(arguments: [(0, "Content-Length: 0\r\n"), (1234, "Content-Length: 1234\r\n"), (-5, "Content-Length: -5\r\n")])
    func aNumericHeaderIsWrittenInDecimal(value: Int, expected: String) {
        #expect(headWritten { $0.appendHeader(name: "Content-Length", decimal: value) } == expected)
    }

    @Test(
        arguments: [
            0, 1, 7, 9, 10, 11, 99, 100, 101, 999, 1000, 65_535, 1_234_567_890, 1_000_000_000_000_000_000,
            Int.max, Int.max - 1, -1, -9, -10, -100, -1_234_567_890, Int.min, Int.min + 1,
        ]
    )
    func decimalsAreWrittenAsSwiftPrintsThem(value: Int) {
        #expect(headWritten { $0.append(decimal: value) } == String(value))
    }

    /// Each power of ten and the number before it, so every digit count is written once at its edges.
    @Test func decimalsOfEveryLengthAreWrittenWhole() {
        var power = 1
        for _ in 0..<18 {
            power *= 10
            for value in [power - 1, power, -(power - 1), -power] {
                #expect(headWritten { $0.append(decimal: value) } == String(value), "\(value)")
            }
        }
    }

    /// A decimal goes after what is already in the buffer and leaves it as it was.
    @Test func aDecimalIsAppended() {
        var buffer = ByteBuffer(string: "Age: ")
        buffer.writeHead(maximumBytes: HeadWriter.decimalBound) { $0.append(decimal: 42) }
        buffer.writeStaticString("\r\n")

        #expect(String(buffer: buffer) == "Age: 42\r\n")
    }

    @Test func aHeaderNameIsATokenExactlyWhenEveryByteIsATokenCharacter() {
        for byte in UInt8(0)...UInt8(0x7F) {
            let name = String(decoding: [UInt8(ascii: "X"), byte], as: UTF8.self)
            #expect(HeaderField.isToken(name) == tokenCharacters.contains(byte), "byte 0x\(String(byte, radix: 16))")
        }
        #expect(!HeaderField.isToken(""))
        #expect(!HeaderField.isToken("X-\u{212A}"))
    }

    @Test func aHeaderValueIsAllowedExactlyWhenItHasNoControlCharacter() {
        for byte in UInt8(0)...UInt8(0x7F) {
            let value = String(decoding: [UInt8(ascii: "a"), byte, UInt8(ascii: "b")], as: UTF8.self)
            let allowed = byte == 0x09 || (0x20...0x7E).contains(byte)
            #expect(HeaderField.isValue(value) == allowed, "byte 0x\(String(byte, radix: 16))")
        }
        #expect(HeaderField.isValue(""))
        #expect(HeaderField.isValue("\u{E9}\u{212A}\u{1F600}"))
    }

    /// A whole head is the status line, the response's own headers, `Cache-Status`, `Age`,
    /// `Content-Length`, the request id, the connection header and a blank line, in that order.
    @Test func aFreshHitsHeadIsWrittenWholeAndInOrder() {
        var response = GatewayResponse(
            status: .ok,
            headers: HTTPHeaders([("Content-Type", "application/json")]),
            body: ByteBuffer(string: "{}")
        )
        response.cacheStatus = .hit(ttl: 29)
        response.age = 1

        let head = written {
            $0.writeResponseHead(version: .http1_1, response: response, requestID: "ab12-7", connection: nil)
        }

        #expect(
            head == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Status: xi-gateway; hit; ttl=29\r\n"
                + "Age: 1\r\nContent-Length: 2\r\nX-Request-Id: ab12-7\r\n\r\n"
        )
    }

    /// A team's budget is two lines, as the IETF httpapi RateLimit header fields draft spells them.
    @Test func aTeamsBudgetIsWrittenAsRateLimitFields() {
        var response = GatewayResponse(status: .ok, body: ByteBuffer(string: "{}"))
        response.rateLimit = BudgetState(perMinute: 120, remaining: 7, secondsToNext: 1)
        let head = written {
            $0.writeResponseHead(version: .http1_1, response: response, requestID: nil, connection: nil)
        }
        #expect(
            head == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nRateLimit-Policy: \"upstream\";q=120;w=60\r\n"
                + "RateLimit: \"upstream\";r=7;t=1\r\n\r\n"
        )
    }

    /// The one-pass head says exactly what its pieces, appended one by one with room to spare, say; also with values far
    /// longer than any usual head, so that the space it reserves is shown to be enough.
    @Test(arguments: [1, 100, 8_000])
    func aWholeHeadIsItsPiecesWrittenOneByOne(length: Int) {
        let long = String(repeating: "v", count: length)
        var response = GatewayResponse(
            status: HTTPResponseStatus(statusCode: 599, reasonPhrase: String(repeating: "R", count: length)),
            headers: HTTPHeaders([("X-One", long), ("Bad Name", "dropped"), ("X-Two", "2")]),
            body: ByteBuffer(repeating: 0x41, count: length)
        )
        response.cacheStatus = .failed(detail: long, collapsed: false)
        response.age = Int.min
        response.rateLimit = BudgetState(perMinute: Int.min, remaining: Int.min, secondsToNext: Int.min)
        let version = HTTPVersion(major: 65_535, minor: 65_535)
        let requestID = String(repeating: "i", count: length)

        let whole = written {
            $0.writeResponseHead(
                version: version,
                response: response,
                requestID: requestID,
                connection: "Connection: close\r\n"
            )
        }
        let pieces = headWritten { head in
            head.appendStatusLine(version: version, status: response.status)
            for (name, value) in response.headers { head.appendHeader(name: name, value: value) }
            head.appendHeader(name: "Cache-Status", value: "xi-gateway; fwd=miss; detail=" + long)
            head.appendHeader(name: "Age", decimal: Int.min)
            head.appendHeader(name: "Content-Length", decimal: length)
            head.appendHeader(name: "RateLimit-Policy", value: "\"upstream\";q=\(Int.min);w=60")
            head.appendHeader(name: "RateLimit", value: "\"upstream\";r=\(Int.min);t=\(Int.min)")
            head.appendHeader(name: "X-Request-Id", value: requestID)
            head.append("Connection: close\r\n\r\n")
        }

        #expect(whole == pieces)
        #expect(whole.hasPrefix("HTTP/65535.65535 599 R"))
        #expect(!whole.contains("Bad Name"))
    }

    /// An upstream header value holding CR LF must not become a header (or an answer) of its own: the
    /// value is dropped, the rest of the answer is whole, and the connection goes on in step.
    @Test(arguments: ["/v1/convai/test-invocations?page_size=5", "/v1/convai/test-invocations/inv-1"])
    func anUpstreamHeaderCannotInjectAHeader(target: String) throws {
        let body = #"{"detail":{"status":"system_busy","message":"slow down"}}"#
        let connection = try ConnectionFixture(
            fixture: ServiceFixture(
                script: ServiceFixture.status(
                    503,
                    body,
                    headers: [
                        ("Content-Type", "application/json\r\nSet-Cookie: a=1"),
                        ("Retry-After", "2\r\nSet-Cookie: x"),
                        ("current-concurrent-requests", "4\n\nHTTP/1.1 200 OK"),
                        ("maximum-concurrent-requests", "4"),
                    ]
                )
            )
        )

        let raw = try connection.exchange(
            "GET \(target) HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        let responses = parseResponses(raw)

        #expect(connection.fixture.upstream.requests.count == 1)
        #expect(!raw.lowercased().contains("set-cookie"))
        #expect(!raw.contains("HTTP/1.1 200 OK\r\nmaximum"))
        #expect(responses.count == 2)
        #expect(responses.first?.status == "HTTP/1.1 503 Service Unavailable")
        #expect(responses.first?.headers["retry-after"] == nil)
        #expect(responses.first?.headers["content-type"] == nil)
        #expect(responses.first?.headers["current-concurrent-requests"] == nil)
        #expect(responses.first?.headers["maximum-concurrent-requests"] == "4")
        #expect(responses.first?.body == body)
        #expect(responses.last?.status == "HTTP/1.1 200 OK")
        #expect(connection.channel.isActive)
    }

    /// A cached page's `Content-Type` is checked once, when stored: one that could start a header of its
    /// own is left out of the miss and of every hit.
    @Test func aCachedPagesContentTypeCannotInjectAHeader() throws {
        let connection = try ConnectionFixture(
            fixture: ServiceFixture(
                script: ServiceFixture.status(
                    200,
                    "[]",
                    headers: [("Content-Type", "application/json\r\nSet-Cookie: a=1")]
                )
            )
        )
        let request = "GET /v1/convai/test-invocations?page_size=5 HTTP/1.1\r\nHost: x\r\n\r\n"

        let raw = try connection.exchange(request + request)
        let responses = parseResponses(raw)

        #expect(connection.fixture.upstream.requests.count == 1)
        #expect(responses.count == 2)
        #expect(responses.allSatisfy { $0.status == "HTTP/1.1 200 OK" && $0.body == "[]" })
        #expect(responses.last?.headers["cache-status"]?.hasPrefix("xi-gateway; hit") == true)
        #expect(!raw.lowercased().contains("set-cookie"))
        #expect(responses.allSatisfy { $0.headers["content-type"] == nil })
    }

    /// The same header, well formed, is passed on: the test above fails for the right reason.
    @Test func aWellFormedUpstreamRetryAfterIsPassedOn() throws {
        let connection = try ConnectionFixture(
            fixture: ServiceFixture(script: ServiceFixture.status(503, "{}", headers: [("Retry-After", "2")]))
        )

        let responses = parseResponses(
            try connection.exchange("GET /v1/convai/test-invocations?page_size=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        )

        #expect(responses.first?.headers["retry-after"] == "2")
    }
}
