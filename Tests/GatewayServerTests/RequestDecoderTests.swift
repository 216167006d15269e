import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayServer

/// What the decoder hands on for well-formed requests, whole or cut anywhere across reads.
@Suite("Request decoder")
struct RequestDecoderTests {
    @Test func aGetIsOneHeadThenAnEnd() throws {
        let decoder = try DecoderFixture()
        decoder.feed("GET /v1/items?page=2&q=a%20b HTTP/1.1\r\nHost: example.test\r\n\r\n")

        #expect(decoder.collector.parts.count == 2)
        guard case .head(let head) = decoder.collector.parts.first else {
            Issue.record("no head first")
            return
        }
        #expect(head.method == .GET)
        #expect(head.uri == "/v1/items?page=2&q=a%20b")
        #expect(head.version == .http1_1)
        guard case .end(let trailers) = decoder.collector.parts.last else {
            Issue.record("no end last")
            return
        }
        #expect(trailers == nil)
        #expect(
            decoder.requests == [
                DecodedRequest("GET", "/v1/items?page=2&q=a%20b", headers: [["Host", "example.test"]])
            ]
        )
        #expect(decoder.errors.isEmpty)
    }

    @Test func aHeadRequestHasNoBody() throws {
        let decoder = try DecoderFixture()
        decoder.feed("HEAD /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(decoder.requests == [DecodedRequest("HEAD", "/healthz", headers: [["Host", "h"]])])
        #expect(decoder.errors.isEmpty)
    }

    /// The body ends where `Content-Length` says; what follows is the next request.
    @Test func aPostBodyIsReadToItsContentLength() throws {
        let decoder = try DecoderFixture()
        decoder.feed("POST /submit HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello worldGET /next HTTP/1.1\r\n\r\n")
        #expect(
            decoder.requests == [
                DecodedRequest("POST", "/submit", headers: [["Content-Length", "11"]], body: "hello world"),
                DecodedRequest("GET", "/next"),
            ]
        )
        #expect(decoder.errors.isEmpty)
    }

    @Test func aZeroContentLengthHasNoBodyPart() throws {
        let decoder = try DecoderFixture()
        decoder.feed("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        #expect(decoder.collector.parts.count == 2)
        #expect(decoder.requests == [DecodedRequest("POST", "/", headers: [["Content-Length", "0"]])])
    }

    /// Chunk extensions and trailers are dropped; the chunks' bytes are the body, and the request ends
    /// after the trailers' empty line.
    @Test func aChunkedBodyIsItsChunksWithoutExtensionsOrTrailers() throws {
        let decoder = try DecoderFixture()
        decoder.feed(
            "POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5;name=value\r\nhello\r\n"
                + "1;x\r\n \r\n"
                + "A\r\n0123456789\r\n"
                + "0;last=1\r\nX-Checksum: abc\r\nX-Other: 2\r\n\r\n"
                + "GET /after HTTP/1.1\r\n\r\n"
        )
        #expect(
            decoder.requests == [
                DecodedRequest(
                    "POST",
                    "/upload",
                    headers: [["Transfer-Encoding", "chunked"]],
                    body: "hello 0123456789"
                ),
                DecodedRequest("GET", "/after"),
            ]
        )
        #expect(decoder.errors.isEmpty)
    }

    @Test func pipelinedRequestsInOneReadComeOutInOrder() throws {
        let decoder = try DecoderFixture()
        decoder.feed("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nX: 1\r\n\r\nHEAD /c HTTP/1.1\r\n\r\n")
        #expect(
            decoder.requests == [
                DecodedRequest("GET", "/a"),
                DecodedRequest("GET", "/b", headers: [["X", "1"]]),
                DecodedRequest("HEAD", "/c"),
            ]
        )
    }

    /// RFC 9112, 2.2: empty lines before a request line are skipped.
    @Test func emptyLinesBeforeARequestAreSkipped() throws {
        let decoder = try DecoderFixture()
        decoder.feed("\r\n\r\nGET /a HTTP/1.1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        decoder.feed("\r\n")
        decoder.feed("\r\nGET /c HTTP/1.1\r\n\r\n")
        #expect(
            decoder.requests == [DecodedRequest("GET", "/a"), DecodedRequest("GET", "/b"), DecodedRequest("GET", "/c")]
        )
        #expect(decoder.errors.isEmpty)
    }

    /// Body bytes go on as they arrive, without waiting for the rest of the body.
    @Test func bodyBytesAreHandedOnAsTheyArrive() throws {
        let decoder = try DecoderFixture()
        decoder.feed("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        #expect(decoder.requests.map(\.body) == [Array("abc".utf8)])
        #expect(decoder.requests.map(\.ended) == [false])
        decoder.feed("defghij")
        #expect(decoder.requests.map(\.body) == [Array("abcdefghij".utf8)])
        #expect(decoder.requests.map(\.ended) == [true])
    }

    // MARK: - Cut across reads

    /// GET, a body by length, a chunked body with extensions and trailers, HEAD and HTTP/1.0, with empty
    /// lines between some of them.
    static let mixedPipeline = Array(
        ("GET /one?x=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"
            + "POST /two HTTP/1.1\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nhello, world!"
            + "\r\n"
            + "PUT /three HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "4;ext=\"v\"\r\nWiki\r\n5\r\npedia\r\ne\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n"
            + "HEAD /four HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"
            + "GET /five HTTP/1.0\r\n\r\n").utf8
    )

    static let mixedPipelineRequests = [
        DecodedRequest("GET", "/one?x=1", headers: [["Host", "h"], ["Accept", "*/*"]]),
        DecodedRequest(
            "POST",
            "/two",
            headers: [["Content-Length", "13"], ["Content-Type", "text/plain"]],
            body: "hello, world!"
        ),
        DecodedRequest(
            "PUT",
            "/three",
            headers: [["Transfer-Encoding", "chunked"]],
            body: "Wikipedia in\r\n\r\nchunks."
        ),
        DecodedRequest("HEAD", "/four", headers: [["Connection", "keep-alive"]]),
        DecodedRequest("GET", "/five", version: .http1_0, keepAlive: false),
    ]

    @Test func aMixedPipelineInOneReadDecodesAsExpected() throws {
        let decoder = try DecoderFixture()
        decoder.feed(Self.mixedPipeline)
        #expect(decoder.requests == Self.mixedPipelineRequests)
        #expect(decoder.errors.isEmpty)
    }

    /// Wherever the read boundary falls (in a request line, a header, between CR and LF, in a chunk-size
    /// line, in a body), the requests come out the same.
    @Test func aMixedPipelineCutAtAnyByteDecodesAsWhole() throws {
        for cut in 0...Self.mixedPipeline.count {
            let decoder = try DecoderFixture()
            decoder.feed(Self.mixedPipeline, cutAt: [cut])
            #expect(decoder.requests == Self.mixedPipelineRequests, "cut at \(cut)")
            #expect(decoder.errors.isEmpty, "cut at \(cut)")
        }
    }

    @Test func aMixedPipelineCutTwiceDecodesAsWhole() throws {
        for first in stride(from: 1, to: Self.mixedPipeline.count, by: 7) {
            for second in stride(from: first, through: Self.mixedPipeline.count, by: 3) {
                let decoder = try DecoderFixture()
                decoder.feed(Self.mixedPipeline, cutAt: [first, second])
                #expect(decoder.requests == Self.mixedPipelineRequests, "cut at \(first), \(second)")
            }
        }
    }

    @Test func aMixedPipelineOneByteAtATimeDecodesAsWhole() throws {
        let decoder = try DecoderFixture()
        decoder.feedBytewise(Self.mixedPipeline)
        #expect(decoder.requests == Self.mixedPipelineRequests)
        #expect(decoder.errors.isEmpty)
    }

    // MARK: - Header fields

    /// Names keep their case, values lose leading and trailing spaces and tabs but keep inner ones, and a
    /// repeated field stays where it was, each time.
    @Test func headerFieldsAreKeptExactlyInOrder() throws {
        let decoder = try DecoderFixture()
        decoder.feed(
            "GET / HTTP/1.1\r\n"
                + "Host: example.test\r\n"
                + "X-MiXeD-cAsE: Value\r\n"
                + "Accept: text/html\r\n"
                + "X-Spaces: \t  a  b\tc \t \r\n"
                + "X-Tight:v\r\n"
                + "Accept: application/json\r\n"
                + "X-Empty:\r\n"
                + "X-Blank:  \t \r\n"
                + "X-Utf8: caf\u{E9} \u{2603}\r\n"
                + "X-Symbols: a=b; c=\"d, e\", (f)\r\n"
                + "accept: */*\r\n"
                + "\r\n"
        )
        #expect(decoder.errors.isEmpty)
        #expect(
            decoder.requests.first?.headers == [
                ["Host", "example.test"],
                ["X-MiXeD-cAsE", "Value"],
                ["Accept", "text/html"],
                ["X-Spaces", "a  b\tc"],
                ["X-Tight", "v"],
                ["Accept", "application/json"],
                ["X-Empty", ""],
                ["X-Blank", ""],
                ["X-Utf8", "caf\u{E9} \u{2603}"],
                ["X-Symbols", "a=b; c=\"d, e\", (f)"],
                ["accept", "*/*"],
            ]
        )
    }

    struct KeepAliveCase: Sendable, CustomTestStringConvertible {
        let version: String
        let connection: String?
        let keepAlive: Bool
        var testDescription: String { "\(version) Connection: \(connection ?? "-") → \(keepAlive)" }
    }

    @Test(arguments: [
        KeepAliveCase(version: "HTTP/1.1", connection: nil, keepAlive: true),
        KeepAliveCase(version: "HTTP/1.1", connection: "close", keepAlive: false),
        KeepAliveCase(version: "HTTP/1.1", connection: "Close", keepAlive: false),
        KeepAliveCase(version: "HTTP/1.1", connection: "keep-alive", keepAlive: true),
        KeepAliveCase(version: "HTTP/1.0", connection: nil, keepAlive: false),
        KeepAliveCase(version: "HTTP/1.0", connection: "keep-alive", keepAlive: true),
        KeepAliveCase(version: "HTTP/1.0", connection: "Keep-Alive", keepAlive: true),
        KeepAliveCase(version: "HTTP/1.0", connection: "close", keepAlive: false),
    ])
    func keepAliveFollowsVersionAndConnection(_ test: KeepAliveCase) throws {
        let decoder = try DecoderFixture()
        let connection = test.connection.map { "Connection: \($0)\r\n" } ?? ""
        decoder.feed("GET / \(test.version)\r\n\(connection)\r\n")
        #expect(decoder.requests.map(\.isKeepAlive) == [test.keepAlive])
        #expect(decoder.requests.map(\.version) == [test.version == "HTTP/1.0" ? .http1_0 : .http1_1])
    }

    @Test func methodsAndTargetsAreKeptAsSent() throws {
        let decoder = try DecoderFixture()
        let targets = [
            "/Items/ABC?Page=2&q=a%2Fb", "*", "http://Example.test:8080/x?y", "/caf\u{E9}/\u{2603}", "/a;b=c/~d",
        ]
        let methods = ["DELETE", "OPTIONS", "PURGE", "PUT", "get"]
        for (method, target) in zip(methods, targets) {
            decoder.feed("\(method) \(target) HTTP/1.1\r\n\r\n")
        }
        #expect(decoder.requests.map(\.method) == methods)
        #expect(decoder.requests.map(\.uri) == targets)
        #expect(decoder.errors.isEmpty)
    }
}
