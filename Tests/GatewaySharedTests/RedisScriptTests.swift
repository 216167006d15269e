import GatewayShared
import GatewayTesting
import NIOCore
import NIOPosix
import Testing

/// Lua scripts by `EVALSHA`, sent in full again when Redis has forgotten them.
// One test at a time: each starts a redis-server, and dozens starting at once starve the other suites.
@Suite("RedisScript: EVALSHA, reloaded on NOSCRIPT", .serialized)
struct RedisScriptTests {
    static let script = RedisScript(
        """
        local count = redis.call('INCRBY', KEYS[1], ARGV[1])
        return {count, KEYS[1], ARGV[2]}
        """
    )

    @Test func runsAndIsReloadedAfterTheScriptCacheIsFlushed() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // The first run finds no script (NOSCRIPT) and sends it whole.
        let first = try await client.evaluate(
            Self.script,
            keys: ["counter"],
            arguments: [5, .bytes([0, 1])],
            on: loop
        )
        .get()
        #expect(first == .array([.integer(5), .bulk("counter"), .bulkString(ByteBuffer(bytes: [0, 1]))]))
        #expect(try await client.send(["SCRIPT", "EXISTS", .string(Self.script.sha1)]) == .array([.integer(1)]))
        // Redis computes the same digest.
        #expect(try await client.send(["SCRIPT", "LOAD", .string(Self.script.source)]) == .bulk(Self.script.sha1))
        let second = try await client.evaluate(Self.script, keys: ["counter"], arguments: [1, "x"], on: loop).get()
        #expect(second.array?.first == .integer(6))
        _ = try await client.send(["SCRIPT", "FLUSH"])
        let third = try await client.evaluate(Self.script, keys: ["counter"], arguments: [1, "x"], on: loop).get()
        #expect(third.array?.first == .integer(7), "ran exactly once after the flush")
        #expect(try await client.send(["GET", "counter"]) == .bulk("7"))
        await client.shutdown()
        await server.stop()
    }

    @Test func aScriptErrorFailsWithTheServersMessage() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let failing = RedisScript("return redis.error_reply('BUDGET exhausted')")
        let error = await redisError {
            try await client.evaluate(
                failing,
                keys: [],
                arguments: [],
                on: MultiThreadedEventLoopGroup.singleton.next()
            )
            .get()
        }
        #expect(error?.serverMessage == "BUDGET exhausted")
        await client.shutdown()
        await server.stop()
    }
}
