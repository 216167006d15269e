import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayServer

/// The decoder's bounds: head size and field count, trailers, what it keeps between reads, and the time a
/// head may take.
@Suite("Request decoder limits")
struct RequestDecoderLimitTests {
    /// A head of exactly `length` bytes (request line, one padding field, empty line).
    static func head(ofLength length: Int) -> [UInt8] {
        let fixed = "GET / HTTP/1.1\r\nX-Pad: \r\n\r\n".utf8.count
        return Array(("GET / HTTP/1.1\r\nX-Pad: " + String(repeating: "p", count: length - fixed) + "\r\n\r\n").utf8)
    }

    enum Feeding: CaseIterable, Sendable {
        case whole
        case bytewise
    }

    @Test(arguments: Feeding.allCases)
    func aHeadOfExactlyMaxHeadBytesIsAccepted(_ feeding: Feeding) throws {
        let decoder = try DecoderFixture(maxHeadBytes: 300)
        let head = Self.head(ofLength: 300)
        #expect(head.count == 300)
        switch feeding {
        case .whole: decoder.feed(head)
        case .bytewise: decoder.feedBytewise(head)
        }
        #expect(decoder.requests.map(\.uri) == ["/"])
        #expect(decoder.requests.first?.ended == true)
        #expect(decoder.errors.isEmpty)
    }

    /// Empty lines before a head count towards its size: with them, a head that would fit alone does not.
    @Test func emptyLinesBeforeAHeadCountTowardsItsSize() throws {
        let fits = try DecoderFixture(maxHeadBytes: 300)
        fits.feed(Array(String(repeating: "\r\n", count: 50).utf8) + Self.head(ofLength: 200))
        #expect(fits.requests.map(\.uri) == ["/"])
        #expect(fits.errors.isEmpty)

        let over = try DecoderFixture(maxHeadBytes: 300)
        over.feed(Array(String(repeating: "\r\n", count: 51).utf8) + Self.head(ofLength: 200))
        #expect(over.requests.isEmpty)
        #expect(over.errors == [.headerOverflow])
    }

    /// A head that never ends is refused once it is longer than the limit, without waiting for its end.
    @Test(arguments: Feeding.allCases)
    func aHeadLongerThanMaxHeadBytesIsHeaderOverflow(_ feeding: Feeding) throws {
        let decoder = try DecoderFixture(maxHeadBytes: 300)
        let endless = Array(("GET / HTTP/1.1\r\nX-Pad: " + String(repeating: "p", count: 290)).utf8)
        switch feeding {
        case .whole: decoder.feed(endless)
        case .bytewise: decoder.feedBytewise(endless)
        }
        #expect(decoder.errors == [.headerOverflow])
        #expect(decoder.requests.isEmpty)
    }

    @Test func aHeadFarOverMaxHeadBytesIsHeaderOverflowWhenComplete() throws {
        let decoder = try DecoderFixture(maxHeadBytes: 300)
        decoder.feed(Self.head(ofLength: 302) + Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(decoder.errors == [.headerOverflow])
        #expect(decoder.requests.isEmpty)
    }

    @Test func maxHeaderCountFieldsAreAcceptedAndOneMoreIsHeaderOverflow() throws {
        func head(fields: Int) -> String {
            "GET / HTTP/1.1\r\n" + (0..<fields).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        }
        let accepted = try DecoderFixture(maxHeaderCount: 8)
        accepted.feed(head(fields: 8))
        #expect(accepted.requests.map(\.headers.count) == [8])
        #expect(accepted.errors.isEmpty)

        let refused = try DecoderFixture(maxHeaderCount: 8)
        refused.feed(head(fields: 9))
        #expect(refused.requests.isEmpty)
        #expect(refused.errors == [.headerOverflow])

        // The decoder's default, which the gateway uses: 256.
        let byDefault = try DecoderFixture()
        byDefault.feed(head(fields: 256) + head(fields: 257))
        #expect(byDefault.requests.map(\.headers.count) == [256])
        #expect(byDefault.errors == [.headerOverflow])
    }

    /// Trailers are bounded like a head: together up to `maxHeadBytes`, and never one byte more.
    @Test(arguments: Feeding.allCases)
    func trailersLongerThanMaxHeadBytesAreHeaderOverflow(_ feeding: Feeding) throws {
        func request(trailerLines: Int) -> [UInt8] {
            // Each trailer line is 50 bytes with its CRLF.
            let line = "X-T: " + String(repeating: "t", count: 43) + "\r\n"
            return Array(
                ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
                    + String(repeating: line, count: trailerLines) + "\r\n").utf8
            )
        }
        let accepted = try DecoderFixture(maxHeadBytes: 300)
        let refused = try DecoderFixture(maxHeadBytes: 300)
        switch feeding {
        case .whole:
            accepted.feed(request(trailerLines: 5))
            refused.feed(request(trailerLines: 7))
        case .bytewise:
            accepted.feedBytewise(request(trailerLines: 5))
            refused.feedBytewise(request(trailerLines: 7))
        }
        #expect(accepted.requests.map(\.ended) == [true])
        #expect(accepted.errors.isEmpty)
        #expect(refused.requests.map(\.ended) == [false])
        #expect(refused.errors == [.headerOverflow])
    }

    @Test func anEndlessTrailerLineIsHeaderOverflow() throws {
        let decoder = try DecoderFixture(maxHeadBytes: 300)
        decoder.feed(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + String(repeating: "t", count: 400)
        )
        #expect(decoder.errors == [.headerOverflow])
    }

    /// A body far larger than memory is handed on read by read; nothing of it is kept.
    @Test func aHugeContentLengthBodyIsStreamedReadByRead() throws {
        let decoder = try DecoderFixture()
        decoder.feed("PUT /big HTTP/1.1\r\nContent-Length: 1099511627776\r\n\r\n")
        let read = [UInt8](repeating: 0x61, count: 64 * 1024)
        for count in 1...64 {
            decoder.feed(read)
            let parts = decoder.collector.parts.dropFirst()
            #expect(parts.count == count)
            #expect(decoder.retained == nil)
            guard case .body(let last) = parts.last, last.readableBytes == read.count else {
                Issue.record("read \(count) was not handed on as one part")
                return
            }
        }
        #expect(decoder.requests.map(\.body.count) == [64 * read.count])
        #expect(decoder.requests.map(\.ended) == [false])
    }

    /// Ten thousand pipelined requests, each read ending in the middle of a head: all are decoded, and what
    /// the decoder keeps between reads stays smaller than two requests.
    @Test func manyRequestsCutMidHeadAreDecodedAndTheKeptBytesDoNotGrow() throws {
        let decoder = try DecoderFixture()
        let count = 10_000
        let requests = (0..<count).map { Array("GET /item/\($0) HTTP/1.1\r\nHost: example.test\r\n\r\n".utf8) }
        var largestKept = 0
        var keptEvery = true
        var carried: ArraySlice<UInt8> = []
        for request in requests {
            // The second half of the previous head and the first half of this one.
            let half = request.count / 2
            decoder.feed(carried + request[..<half])
            carried = request[half...]
            guard let kept = decoder.retained else {
                keptEvery = false
                continue
            }
            #expect(kept.readableBytes == half)
            largestKept = max(largestKept, kept.capacity)
        }
        decoder.feed(carried)

        #expect(keptEvery)
        #expect(largestKept <= 256)
        #expect(decoder.retained == nil)
        #expect(decoder.errors.isEmpty)
        #expect(decoder.requests.count == count)
        #expect(decoder.requests.map(\.uri) == (0..<count).map { "/item/\($0)" })
        #expect(decoder.requests.allSatisfy { $0.ended && $0.headers == [["Host", "example.test"]] })
    }

    /// The same with chunked bodies, each read ending in a chunk-size line.
    @Test func manyChunkedRequestsCutMidChunkSizeKeepLittle() throws {
        let decoder = try DecoderFixture()
        let request = Array("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n".utf8)
        let cut = request.count - "ext=1\r\nhello\r\n0\r\n\r\n".utf8.count
        var largestKept = 0
        var carried: ArraySlice<UInt8> = []
        for _ in 0..<2000 {
            decoder.feed(carried + request[..<cut])
            carried = request[cut...]
            largestKept = max(largestKept, decoder.retained?.capacity ?? 0)
        }
        decoder.feed(carried)
        #expect(largestKept > 0 && largestKept <= 256)
        #expect(decoder.requests.count == 2000)
        #expect(decoder.requests.allSatisfy { $0.ended && $0.body == Array("hello".utf8) })
    }
}
