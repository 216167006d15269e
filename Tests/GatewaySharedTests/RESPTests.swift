import NIOCore
import Testing

@testable import GatewayShared

/// Encoding with `redisFormatCommandArgv` and parsing with hiredis's reader, without a server.
@Suite("RESP: commands encoded and replies read by hiredis")
struct RESPTests {
    @Test(
        arguments: [
            ("+OK\r\n", RESPValue.simpleString("OK")),
            ("-ERR unknown command 'X'\r\n", .error("ERR unknown command 'X'")),
            (":0\r\n", .integer(0)),
            (":-42\r\n", .integer(-42)),
            (":9223372036854775807\r\n", .integer(Int.max)),
            ("$0\r\n\r\n", .bulk("")),
            ("$6\r\na\r\nb\0c\r\n", .bulk("a\r\nb\0c")),
            ("$-1\r\n", .null),
            ("*-1\r\n", .null),
            ("*0\r\n", .array([])),
            ("*3\r\n$1\r\n1\r\n$-1\r\n:2\r\n", .array([.bulk("1"), .null, .integer(2)])),
            ("*2\r\n*1\r\n+a\r\n*0\r\n", .array([.array([.simpleString("a")]), .array([])])),
        ] as [(String, RESPValue)]
    )
    func readsEachKindOfReply(wire: String, expected: RESPValue) throws {
        let reader = try #require(RESPReader())
        try reader.feed(ByteBuffer(string: wire))
        #expect(try reader.next() == expected)
        #expect(try reader.next() == nil)
    }

    @Test func readsRepliesSplitAnywhereAndSeveralInOneRead() throws {
        let wire = "+OK\r\n$5\r\nhello\r\n*2\r\n:1\r\n$-1\r\n:7\r\n"
        let expected: [RESPValue] = [.simpleString("OK"), .bulk("hello"), .array([.integer(1), .null]), .integer(7)]
        for chunkSize in [1, 2, 3, 7, wire.utf8.count] {
            let reader = try #require(RESPReader())
            var values: [RESPValue] = []
            let bytes = Array(wire.utf8)
            for start in stride(from: 0, to: bytes.count, by: chunkSize) {
                try reader.feed(ByteBuffer(bytes: bytes[start..<min(start + chunkSize, bytes.count)]))
                while let value = try reader.next() { values.append(value) }
            }
            #expect(values == expected, "chunks of \(chunkSize)")
        }
    }

    @Test(arguments: ["?what\r\n", "@1\r\n"])
    func refusesWhatIsNotRESP(wire: String) throws {
        let reader = try #require(RESPReader())
        #expect(throws: RedisError.self) {
            try reader.feed(ByteBuffer(string: wire))
            _ = try reader.next()
        }
    }

    @Test func readsALargeBulkString() throws {
        let payload = [UInt8]((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        var wire = ByteBuffer(string: "$\(payload.count)\r\n")
        wire.writeBytes(payload)
        wire.writeString("\r\n")
        let reader = try #require(RESPReader())
        try reader.feed(wire)
        #expect(try reader.next() == .bulkString(ByteBuffer(bytes: payload)))
    }

    @Test(
        arguments: [
            (["PING"], "*1\r\n$4\r\nPING\r\n"),
            (["SET", "k", ""], "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"),
            (["INCRBY", "n", -12], "*3\r\n$6\r\nINCRBY\r\n$1\r\nn\r\n$3\r\n-12\r\n"),
            (
                ["SET", .bytes([0, 13, 10]), .bytes(ByteBuffer(string: "\r\n"))],
                "*3\r\n$3\r\nSET\r\n$3\r\n\0\r\n\r\n$2\r\n\r\n\r\n"
            ),
        ] as [([RedisArgument], String)]
    )
    func encodesCommands(arguments: [RedisArgument], wire: String) throws {
        #expect(String(buffer: try RESPCommand.encode(arguments)) == wire)
    }

    @Test func refusesAnEmptyCommand() {
        #expect(throws: RedisError.self) { try RESPCommand.encode([]) }
    }

    @Test func scriptsKnowTheirSHA1() {
        // `redis-cli SCRIPT LOAD "return 1"` answers this digest.
        #expect(RedisScript("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }

    @Test(
        arguments: [
            (RedisError.timeout, "timeout"),
            (.closed, "closed"),
            (.connectionFailed("refused"), "connection_failed"),
            (.server("NOSCRIPT No matching script"), "server_NOSCRIPT"),
            (.server("ERR " + String(repeating: "x", count: 500)), "server_ERR"),
            (.protocolError("junk"), "protocol_error"),
        ] as [(RedisError, String)]
    )
    func errorsHaveShortBoundedLabels(error: RedisError, label: String) {
        #expect(error.shortDescription == label)
    }
}
