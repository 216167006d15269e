import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import GatewayServer

/// The head timeout counts from a head's first byte and only while a head is under way.
@Suite("Request decoder head timeout")
struct RequestDecoderHeadTimeoutTests {
    @Test func aHeadDribbledAByteASecondIsClosedAtTheTimeout() throws {
        let decoder = try DecoderFixture(headTimeout: .seconds(10))
        let head = Array("GET /slow HTTP/1.1\r\nHost: example.test\r\n\r\n".utf8)
        for (second, byte) in head.enumerated() {
            decoder.feed([byte])
            if second == 9 { #expect(decoder.channel.isActive, "open at 9 s") }
            decoder.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
            if second == 9 { #expect(!decoder.channel.isActive, "closed at 10 s") }
        }
        #expect(!decoder.channel.isActive)
        #expect(decoder.requests.isEmpty)
    }

    /// Empty lines before a request line start the head's clock: a client sending only CR LFs is closed at
    /// the head timeout, however often it sends them.
    @Test func emptyLinesBeforeARequestAreTimedAsPartOfItsHead() throws {
        let decoder = try DecoderFixture(headTimeout: .seconds(10))
        for second in 0..<12 {
            decoder.feed("\r\n")
            if second == 9 { #expect(decoder.channel.isActive, "open at 9 s") }
            decoder.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        }
        #expect(!decoder.channel.isActive)
        #expect(decoder.requests.isEmpty)
    }

    @Test func aHeadCompletedInTimeIsNotClosed() throws {
        let decoder = try DecoderFixture(headTimeout: .seconds(10))
        for byte in "GET / HTTP/1.1\r\n\r\n".utf8 {
            decoder.feed([byte])
            decoder.channel.embeddedEventLoop.advanceTime(by: .milliseconds(500))
        }
        decoder.channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(decoder.channel.isActive)
        #expect(decoder.requests.map(\.ended) == [true])
    }

    /// A head that starts in the read that ends the request before it is timed from that read, not from
    /// the first head's start nor from the next read.
    @Test func aHeadStartingInThePreviousRequestsReadIsTimedFromItsFirstByte() throws {
        let decoder = try DecoderFixture(headTimeout: .seconds(10))
        let loop = decoder.channel.embeddedEventLoop
        decoder.feed("GET /first HT")  // 0 s: the first head begins
        loop.advanceTime(by: .seconds(3))
        decoder.feed("TP/1.1\r\n\r\nGET /second HT")  // 3 s: the first ends, the second begins
        loop.advanceTime(by: .seconds(2))
        decoder.feed("TP/1.1\r\n")  // 5 s
        loop.advanceTime(by: .milliseconds(7_900))  // 12.9 s
        #expect(decoder.channel.isActive, "open at 12.9 s: the second head began at 3 s")
        loop.advanceTime(by: .milliseconds(100))  // 13 s
        #expect(!decoder.channel.isActive, "closed at 13 s")
        #expect(decoder.requests.map(\.uri) == ["/first"])
    }

    /// Only heads are timed: a body may take as long as it likes, and the head after it is timed anew.
    @Test(arguments: [false, true])
    func aSlowBodyDoesNotTripTheHeadTimeout(chunked: Bool) throws {
        let decoder = try DecoderFixture(headTimeout: .seconds(10))
        let loop = decoder.channel.embeddedEventLoop
        let framing = chunked ? "Transfer-Encoding: chunked" : "Content-Length: 30"
        decoder.feed("POST /slow HTTP/1.1\r\n\(framing)\r\n\r\n")
        for _ in 0..<30 {
            loop.advanceTime(by: .seconds(1))
            decoder.feed(chunked ? "1\r\nb\r\n" : "b")
        }
        if chunked { decoder.feed("0\r\n\r\n") }
        #expect(decoder.channel.isActive)
        #expect(decoder.requests.map(\.body.count) == [30])
        #expect(decoder.requests.map(\.ended) == [true])

        // The next head, a byte a second, is closed 10 s after its first byte.
        for (second, byte) in "GET /next HTTP/1.1\r\n\r\n".utf8.enumerated() where second < 12 {
            decoder.feed([byte])
            loop.advanceTime(by: .seconds(1))
            #expect(decoder.channel.isActive == (second < 9), "at \(second + 1) s")
        }
    }
}
