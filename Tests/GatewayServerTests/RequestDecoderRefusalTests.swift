import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayServer

/// Every head the decoder refuses, the request smuggling classics among them: an error, no head for the
/// refused request, and nothing decoded after it, whether it arrives whole or a byte at a time.
@Suite("Request decoder refusals")
struct RequestDecoderRefusalTests {
    struct Refusal: Sendable, CustomTestStringConvertible {
        let name: String
        let request: String
        let error: HTTPParserError
        /// For a refused body: what of it was handed on before the error.
        var bodyBefore: String? = nil
        var testDescription: String { name }
    }

    static let before = "GET /before HTTP/1.1\r\n\r\n"
    static let after = "GET /after HTTP/1.1\r\n\r\n"

    static let headRefusals: [Refusal] = [
        // Line endings and folding.
        .init(name: "bare LF after the request line", request: "GET / HTTP/1.1\nHost: h\r\n\r\n", error: .lfExpected),
        .init(name: "bare LF after a header", request: "GET / HTTP/1.1\r\nHost: h\n\r\n", error: .lfExpected),
        .init(name: "bare LF as the empty line", request: "GET / HTTP/1.1\r\nHost: h\r\n\n", error: .lfExpected),
        .init(name: "bare LFs only", request: "GET / HTTP/1.1\nHost: h\n\n", error: .lfExpected),
        .init(
            name: "obs-fold with space",
            request: "GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
            error: .invalidHeaderToken
        ),
        .init(
            name: "obs-fold with tab",
            request: "GET / HTTP/1.1\r\nX-A: a\r\n\tb: c\r\n\r\n",
            error: .invalidHeaderToken
        ),
        // Header names.
        .init(name: "space before colon", request: "GET / HTTP/1.1\r\nHost : h\r\n\r\n", error: .invalidHeaderToken),
        .init(name: "tab before colon", request: "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", error: .invalidHeaderToken),
        .init(name: "no colon", request: "GET / HTTP/1.1\r\nHost h\r\n\r\n", error: .invalidHeaderToken),
        .init(name: "empty name", request: "GET / HTTP/1.1\r\n: h\r\n\r\n", error: .invalidHeaderToken),
        .init(name: "non-token name", request: "GET / HTTP/1.1\r\nX(y): h\r\n\r\n", error: .invalidHeaderToken),
        // Control characters.
        .init(name: "NUL in value", request: "GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n", error: .invalidCharactersUsed),
        .init(name: "bare CR in value", request: "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", error: .invalidCharactersUsed),
        .init(name: "DEL in value", request: "GET / HTTP/1.1\r\nX: a\u{7F}\r\n\r\n", error: .invalidCharactersUsed),
        .init(name: "ESC in value", request: "GET / HTTP/1.1\r\nX: \u{1B}[0m\r\n\r\n", error: .invalidCharactersUsed),
        .init(name: "control in target", request: "GET /a\u{1}b HTTP/1.1\r\n\r\n", error: .invalidURL),
        .init(name: "bare CR in target", request: "GET /a\rb HTTP/1.1\r\n\r\n", error: .invalidURL),
        // Request line.
        .init(name: "two spaces after method", request: "GET  / HTTP/1.1\r\n\r\n", error: .invalidURL),
        .init(name: "no version", request: "GET /\r\n\r\n", error: .invalidURL),
        .init(name: "trailing space", request: "GET / HTTP/1.1 \r\n\r\n", error: .invalidVersion),
        .init(name: "HTTP/1.2", request: "GET / HTTP/1.2\r\n\r\n", error: .invalidVersion),
        .init(name: "HTTP/2.0", request: "GET / HTTP/2.0\r\n\r\n", error: .invalidVersion),
        .init(name: "lowercase version", request: "GET / http/1.1\r\n\r\n", error: .invalidVersion),
        .init(name: "leading space", request: " GET / HTTP/1.1\r\n\r\n", error: .invalidMethod),
        .init(name: "non-token method", request: "G(T / HTTP/1.1\r\n\r\n", error: .invalidMethod),
        // The target and Host (RFC 9112, 3.2).
        .init(
            name: "a fragment in the target",
            request: "GET /a?b=c#d HTTP/1.1\r\nHost: h\r\n\r\n",
            error: .invalidURL
        ),
        .init(name: "a bare # target", request: "GET # HTTP/1.1\r\nHost: h\r\n\r\n", error: .invalidURL),
        .init(
            name: "two Host fields",
            request: "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            error: .invalidHeaderToken
        ),
        .init(
            name: "two Host fields, 1.0",
            request: "GET / HTTP/1.0\r\nhost: a\r\nHOST: b\r\n\r\n",
            error: .invalidHeaderToken
        ),
        .init(name: "Host with a space", request: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", error: .invalidHeaderToken),
        .init(name: "Host with a path", request: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", error: .invalidHeaderToken),
        .init(name: "Host with userinfo", request: "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", error: .invalidHeaderToken),
        .init(name: "Host with a comma", request: "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", error: .invalidHeaderToken),
        // Transfer-Encoding.
        .init(
            name: "Content-Length then Transfer-Encoding",
            request: "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            error: .unexpectedContentLength
        ),
        .init(
            name: "Transfer-Encoding then Content-Length",
            request: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            error: .unexpectedContentLength
        ),
        .init(
            name: "Transfer-Encoding: chunked, identity",
            request: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
            error: .invalidHeaderToken
        ),
        .init(
            name: "Transfer-Encoding: gzip, chunked",
            request: "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            error: .invalidHeaderToken
        ),
        .init(
            name: "Transfer-Encoding : chunked",
            request: "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
            error: .invalidHeaderToken
        ),
        .init(
            name: "Transfer-Encoding: xchunked",
            request: "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
            error: .invalidHeaderToken
        ),
        .init(
            name: "Transfer-Encoding: identity",
            request: "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            error: .invalidHeaderToken
        ),
        .init(
            name: "empty Transfer-Encoding",
            request: "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n",
            error: .invalidHeaderToken
        ),
        .init(
            name: "two Transfer-Encoding: chunked",
            request: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            error: .invalidHeaderToken
        ),
        .init(
            name: "Transfer-Encoding chunked then identity",
            request: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
            error: .invalidHeaderToken
        ),
        .init(
            name: "HTTP/1.0 with chunked",
            request: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            error: .unexpectedContentLength
        ),
        // Content-Length.
        .init(
            name: "Content-Length: 1, 1",
            request: "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx",
            error: .invalidContentLength
        ),
        .init(
            name: "Content-Length: +5",
            request: "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello",
            error: .invalidContentLength
        ),
        .init(
            name: "Content-Length: -1",
            request: "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            error: .invalidContentLength
        ),
        .init(
            name: "Content-Length: 0x5",
            request: "POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\nhello",
            error: .invalidContentLength
        ),
        .init(
            name: "Content-Length: 5 5",
            request: "POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\nhello",
            error: .invalidContentLength
        ),
        .init(
            name: "empty Content-Length",
            request: "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
            error: .invalidContentLength
        ),
        .init(
            name: "Content-Length of 19 digits",
            request: "POST / HTTP/1.1\r\nContent-Length: 1000000000000000000\r\n\r\n",
            error: .invalidContentLength
        ),
        .init(
            name: "Content-Length 5 and 6",
            request: "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            error: .unexpectedContentLength
        ),
        .init(
            name: "Content-Length 5, 6 and 5",
            request: "POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 6\r\nContent-Length: 5\r\n\r\nhello!",
            error: .unexpectedContentLength
        ),
    ]

    static let bodyRefusals: [Refusal] = [
        // Whitespace after the size, or around an extension: strict parsers refuse it (RFC 9112, 7.1.1).
        .init(name: "space after size", request: "5 \r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        .init(name: "tab after size", request: "5\t\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        .init(name: "space before ;", request: "5 ;a\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        .init(name: "space after ;", request: "5; a\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        .init(
            name: "space in extension",
            request: "5;a=b c\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: ""
        ),
        .init(
            name: "space around =",
            request: "5;a = b\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: ""
        ),
        .init(name: "last chunk with space", request: "0 \r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        // Extensions out of grammar.
        .init(name: "; alone", request: "5;\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        .init(name: "empty name", request: "5;=b\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        .init(name: "empty value", request: "5;a=\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        .init(name: "==", request: "5;a==b\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        .init(name: "trailing ;", request: "5;a=b;\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        .init(
            name: "non-token name",
            request: "5;a(b)\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: ""
        ),
        .init(
            name: "unclosed quote",
            request: "5;a=\"b\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: ""
        ),
        .init(
            name: "after the quote",
            request: "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: ""
        ),
        .init(
            name: "control in quote",
            request: "5;a=\"\u{1}\"\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: ""
        ),
        .init(
            name: "escaped control",
            request: "5;a=\"\\\u{1}\"\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: ""
        ),
        .init(
            name: "non-ASCII in quote",
            request: "5;a=\"é\"\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: ""
        ),
        .init(name: "chunk size 0x5", request: "0x5\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        .init(name: "empty chunk size", request: "\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        .init(name: "chunk size -5", request: "-5\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize, bodyBefore: ""),
        .init(
            name: "chunk size after a space",
            request: " 5\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: ""
        ),
        .init(
            name: "extension without size",
            request: ";x\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: ""
        ),
        .init(
            name: "chunk size of 16 hex digits",
            request: "0000000000000005\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: ""
        ),
        .init(
            name: "chunk size of 17 hex digits",
            request: "10000000000000000\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: ""
        ),
        .init(
            name: "no CRLF after chunk data",
            request: "5\r\nhelloX\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: "hello"
        ),
        .init(
            name: "bare LF after chunk data",
            request: "5\r\nhello\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: "hello"
        ),
        .init(
            name: "chunk longer than its size",
            request: "3\r\nhello\r\n0\r\n\r\n",
            error: .invalidChunkSize,
            bodyBefore: "hel"
        ),
        .init(name: "bare LF after chunk size", request: "5\nhello\r\n0\r\n\r\n", error: .lfExpected, bodyBefore: ""),
        .init(name: "bare LF in trailers", request: "0\r\nX: 1\n\r\n", error: .lfExpected, bodyBefore: ""),
        .init(name: "bare LF ending trailers", request: "0\r\nX: 1\r\n\n", error: .lfExpected, bodyBefore: ""),
        .init(
            name: "chunk-size line over 4096 bytes",
            request: "5;" + String(repeating: "e", count: 4100) + "\r\nhello\r\n0\r\n\r\n",
            error: .headerOverflow,
            bodyBefore: ""
        ),
    ]

    enum Feeding: CaseIterable, Sendable {
        case whole
        case bytewise
    }

    /// Feeds a good request, `bad`, and a good request; then a good request in a read of its own.
    private func feed(_ bad: String, _ feeding: Feeding) throws -> DecoderFixture {
        let decoder = try DecoderFixture()
        let bytes = Array((Self.before + bad + Self.after).utf8)
        switch feeding {
        case .whole: decoder.feed(bytes)
        case .bytewise: decoder.feedBytewise(bytes)
        }
        decoder.feed(Self.after)
        return decoder
    }

    @Test(arguments: headRefusals, Feeding.allCases)
    func aRefusedHeadIsAnErrorAndEndsDecoding(_ refusal: Refusal, _ feeding: Feeding) throws {
        let decoder = try feed(refusal.request, feeding)
        #expect(decoder.requests == [DecodedRequest("GET", "/before")])
        #expect(decoder.errors == [refusal.error])
    }

    @Test(arguments: bodyRefusals, Feeding.allCases)
    func aRefusedChunkedBodyIsAnErrorAndEndsDecoding(_ refusal: Refusal, _ feeding: Feeding) throws {
        let head = "POST /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        let decoder = try feed(head + refusal.request, feeding)
        var refused = DecodedRequest("POST", "/chunked", headers: [["Transfer-Encoding", "chunked"]])
        refused.body = Array((refusal.bodyBefore ?? "").utf8)
        refused.ended = false
        #expect(decoder.requests == [DecodedRequest("GET", "/before"), refused])
        #expect(decoder.errors == [refusal.error])
    }

    /// Extensions within the grammar are read and dropped: `;name`, `;name=token`, `;name="quoted"`, several.
    @Test(arguments: ["5;a", "5;a=b", "5;a=\"x y\"", "5;a=\"q\\\"x\"", "5;a;b=c;d=\"\"", "05;A-1=~!"])
    func chunkExtensionsInTheGrammarAreAccepted(_ sizeLine: String) throws {
        let decoder = try DecoderFixture()
        decoder.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\(sizeLine)\r\nhello\r\n0\r\n\r\n")
        #expect(decoder.requests.map(\.body) == [Array("hello".utf8)])
        #expect(decoder.errors.isEmpty)
    }

    /// Empty lines before a request line count against the head's size: a stream of them is refused (`431`)
    /// like a head too large, and a head that fits alone but not after them is refused too.
    @Test func emptyLinesBeforeARequestCountAgainstTheHeadSize() throws {
        let fits = try DecoderFixture(maxHeadBytes: 64)
        fits.feed(String(repeating: "\r\n", count: 10) + "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(fits.requests.map(\.uri) == ["/"])
        #expect(fits.errors.isEmpty)

        let flood = try DecoderFixture(maxHeadBytes: 64)
        flood.feedBytewise(Array(String(repeating: "\r\n", count: 40).utf8))
        #expect(flood.errors == [.headerOverflow])

        let tooMuch = try DecoderFixture(maxHeadBytes: 64)
        tooMuch.feed(String(repeating: "\r\n", count: 20) + "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(tooMuch.requests.isEmpty)
        #expect(tooMuch.errors == [.headerOverflow])
    }

    /// The same `Content-Length` twice is one length, not a conflict.
    @Test func aRepeatedEqualContentLengthIsOneLength() throws {
        let decoder = try DecoderFixture()
        decoder.feed("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n")
        #expect(decoder.requests.map(\.body) == [Array("hello".utf8), []])
        #expect(decoder.errors.isEmpty)
    }

    /// `Transfer-Encoding` and `Content-Length` names are matched without regard to case.
    @Test func framingHeadersAreMatchedWhateverTheirCase() throws {
        let decoder = try DecoderFixture()
        decoder.feed(
            "POST /a HTTP/1.1\r\ncontent-LENGTH: 2\r\n\r\nhi"
                + "POST /b HTTP/1.1\r\nTRANSFER-encoding: Chunked\r\n\r\n2\r\nyo\r\n0\r\n\r\n"
                + "POST /c HTTP/1.1\r\ntransfer-encoding: chunked\r\nCONTENT-length: 2\r\n\r\n"
        )
        #expect(decoder.requests.map(\.body) == [Array("hi".utf8), Array("yo".utf8)])
        #expect(decoder.errors == [.unexpectedContentLength])
    }
}
