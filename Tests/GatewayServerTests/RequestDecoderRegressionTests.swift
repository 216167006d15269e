import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import GatewayServer

/// Regressions: bugs review found in ``RequestDecoder``, each as the behaviour it has since its fix.
@Suite("Request decoder regressions")
struct RequestDecoderRegressionTests {
    enum Feeding: CaseIterable, Sendable {
        case whole
        case bytewise
    }

    /// A line of a request, shown escaped in test names.
    struct Line: Sendable, CustomTestStringConvertible {
        let text: String
        init(_ text: String) { self.text = text }
        var testDescription: String { text.debugDescription }
    }

    /// `endOfHead` searched `limit + 1` bytes for the head's last LF, so a head of `maxHeadBytes + 1` bytes
    /// was accepted (whole or a byte at a time).
    @Test(arguments: Feeding.allCases)
    func aHeadOneByteOverMaxHeadBytesIsHeaderOverflow(_ feeding: Feeding) throws {
        let decoder = try DecoderFixture(maxHeadBytes: 32)
        // 33 bytes: "GET / HTTP/1.1\r\nX-Pad: pppppp\r\n\r\n"
        let head = RequestDecoderLimitTests.head(ofLength: 33)
        switch feeding {
        case .whole: decoder.feed(head)
        case .bytewise: decoder.feedBytewise(head)
        }
        #expect(decoder.errors == [.headerOverflow])
        #expect(decoder.requests.isEmpty)
    }

    /// After the size's hex digits, `chunkSize` stopped at the first space, tab or `;` and ignored the rest
    /// of the line: another number, a word, a NUL, a bare CR or DEL after the size were accepted, though no
    /// RFC 9112 chunk-size line has them.
    @Test(arguments: ["5 5", "5 x", "5\tx", "5;a\rb", "5;\u{0}", "5;a=\u{7F}"].map(Line.init))
    func aChunkSizeLineWithMoreThanSizeAndExtensionsIsRefused(_ line: Line) throws {
        let decoder = try DecoderFixture()
        decoder.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\(line.text)\r\nhello\r\n0\r\n\r\n")
        #expect(decoder.errors.count == 1)
        #expect(decoder.requests.map(\.body) == [[]])
        #expect(decoder.requests.map(\.ended) == [false])
    }

    /// Trailer lines were dropped without being looked at: lines with no colon, a folded line, a name with a
    /// space, and values with a NUL or a bare CR were accepted, where the same lines in a head are refused.
    @Test(arguments: ["no colon", " folded", "Bad Name: x", ": x", "X: a\u{0}b", "X: a\rb"].map(Line.init))
    func aMalformedTrailerFieldIsRefused(_ trailer: Line) throws {
        let decoder = try DecoderFixture()
        decoder.feed(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Good: 1\r\n\(trailer.text)\r\n\r\n"
        )
        #expect(decoder.errors.count == 1)
        #expect(decoder.requests.map(\.ended) == [false])
    }

    /// When the handler after the decoder closes the channel while handling a part (so `channelInactive`
    /// runs inside `fireChannelRead`), `decodeOne` overwrote the `.failed` state that `channelInactive` set
    /// with the next state, and `channelRead` went on decoding: the body, the end and the next request were
    /// handed on after the channel went inactive. (The same for a request without a body, whose end the
    /// decoder hands on right after its head.)
    @Test(arguments: [
        "POST /close HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\n\r\n",
        "GET /close HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
    ])
    func nothingIsHandedOnAfterTheChannelClosesDuringARead(input: String) throws {
        let decoder = try DecoderFixture()
        decoder.collector.onPart = { part, context in
            if case .head = part { context.close(promise: nil) }
        }
        decoder.feed(input)
        #expect(!decoder.channel.isActive)
        #expect(decoder.collector.partsAfterInactive == 0)
        #expect(decoder.requests.map(\.uri) == ["/close"])
    }
}
