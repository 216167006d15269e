import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import GatewayServer

/// The head timeout counts from a head's first byte, wherever that byte arrives.
@Suite("Head timeout")
struct HeadTimeoutTests {
    @Test func aHeadStartedInThePreviousRequestsReadIsTimedFromItsFirstByte() throws {
        let connection = try PendingConnectionFixture()  // requestHeadTimeout 10 s, idleTimeout 60 s

        // One read: a whole request and the first bytes of the next head.
        connection.send("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\nGET /healthz HTTP/1.1\r\nHost: h\r\nHo")
        #expect(try connection.output().hasPrefix("HTTP/1.1 200 OK"))

        // The rest of that head, a byte a second, from 40 s on.
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(40))
        for byte in "st: x\r\n\r\n".utf8 {
            connection.send(String(decoding: [byte], as: UTF8.self))
            connection.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        }

        // The head began at 0 s: it should have been cut off at 10 s, not answered at ~48 s.
        #expect(!connection.channel.isActive)
        #expect(try !connection.output().contains("200 OK"))
    }
}
