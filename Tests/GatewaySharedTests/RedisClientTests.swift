import GatewayShared
import GatewayTesting
import NIOCore
import NIOPosix
import Testing

/// Commands against a real `redis-server`, each test with its own.
// One test at a time: each starts a redis-server, and dozens starting at once starve the other suites.
@Suite("RedisClient: commands and replies against a real Redis", .serialized)
struct RedisClientTests {
    @Test func setAndGetKeepBinaryValuesExactly() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let values: [[UInt8]] = [
            [], [0], Array("\r\n".utf8), Array("$3\r\nfoo\r\n*1\r\n".utf8), [0, 13, 10, 0, 255, 254],
            (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) },
        ]
        for (index, value) in values.enumerated() {
            let key = RedisArgument.bytes(Array("key\r\n\0\(index)".utf8))
            #expect(try await client.send(["SET", key, .bytes(value)]) == .simpleString("OK"))
            #expect(try await client.send(["GET", key]) == .bulkString(ByteBuffer(bytes: value)))
        }
        #expect(try await client.send(["GET", "missing"]) == .null)
        #expect(try await client.send(["GET", "missing"]).isNull)
        await client.shutdown()
        await server.stop()
    }

    @Test func integers() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        #expect(try await client.send(["INCR", "n"]) == .integer(1))
        #expect(try await client.send(["INCRBY", "n", -43]) == .integer(-42))
        #expect(try await client.send(["GET", "n"]).int == -42)
        #expect(try await client.send(["SET", "big", .integer(Int.max)]) == .simpleString("OK"))
        #expect(try await client.send(["INCRBY", "big", 0]).int == Int.max)
        #expect(try await client.send(["EXISTS", "n", "big", "none"]) == .integer(2))
        await client.shutdown()
        await server.stop()
    }

    @Test func arraysWithNilsAndNesting() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        _ = try await client.send(["MSET", "a", "1", "b", .bytes([0, 1])])
        #expect(
            try await client.send(["MGET", "a", "nothing", "b"])
                == .array([.bulk("1"), .null, .bulkString(ByteBuffer(bytes: [0, 1]))])
        )
        #expect(try await client.send(["LRANGE", "no-list", 0, -1]) == .array([]))
        let time = try #require(try await client.send(["TIME"]).array)
        #expect(time.count == 2)
        #expect((time[0].int ?? 0) > 1_600_000_000, "Redis's clock, in seconds")
        _ = try await client.send(["HSET", "h", "f", "v"])
        let scan = try #require(try await client.send(["HSCAN", "h", 0]).array)
        #expect(scan == [.bulk("0"), .array([.bulk("f"), .bulk("v")])])
        await client.shutdown()
        await server.stop()
    }

    @Test func errorRepliesFailTheFutureAndTheConnectionGoesOn() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        _ = try await client.send(["SET", "text", "abc"])
        let notANumber = await redisError { try await client.send(["INCR", "text"]) }
        #expect(notANumber?.serverMessage?.hasPrefix("ERR") == true)
        #expect(notANumber?.isServerReply == true)
        let unknown = await redisError { try await client.send(["NOSUCHCOMMAND", "x"]) }
        #expect(unknown?.serverMessage?.contains("unknown command") == true)
        let wrongType = await redisError { try await client.send(["LPUSH", "text", "x"]) }
        #expect(wrongType?.shortDescription == "server_WRONGTYPE")
        #expect(try await client.send(["PING"]) == .simpleString("PONG"))
        await client.shutdown()
        await server.stop()
    }

    @Test func manyCommandsInFlightOnOneLoopAreAnsweredInOrder() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // All sent from the loop in one go, so they are in flight together on its one connection.
        let futures = try await loop.submit {
            (0..<2000).map { index in client.send(["ECHO", .string("payload-\(index)")], on: loop) }
        }.get()
        for (index, future) in futures.enumerated() {
            #expect(try await future.get() == .bulk("payload-\(index)"))
        }
        await client.shutdown()
        await server.stop()
    }

    @Test func manyTasksOnSeveralLoopsEachGetTheirOwnAnswer() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let group = MultiThreadedEventLoopGroup.singleton
        let loops = (0..<4).map { _ in group.next() }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for task in 0..<64 {
                tasks.addTask {
                    for round in 0..<20 {
                        let payload = "task-\(task)-round-\(round)"
                        let loop = loops[(task + round) % loops.count]
                        let reply = try await client.send(["ECHO", .string(payload)], on: loop).get()
                        #expect(reply == .bulk(payload))
                    }
                }
            }
            try await tasks.waitForAll()
        }
        // One connection per loop used (the fixture's probe may not have been counted out yet).
        let distinctLoops = Set(loops.map { ObjectIdentifier($0) }).count
        let clients = try await client.send(["CLIENT", "LIST"]).string ?? ""
        let connections = clients.split(separator: "\n").count
        #expect(connections <= distinctLoops + 1, "\(clients)")
        await client.shutdown()
        await server.stop()
    }

    @Test func selectsTheEndpointsDatabase() async throws {
        let server = try await RedisServer.start()
        let three = makeClient(server, database: 3)
        let zero = makeClient(server)
        _ = try await three.send(["SET", "where", "three"])
        #expect(try await zero.send(["GET", "where"]) == .null)
        #expect(try await three.send(["GET", "where"]) == .bulk("three"))
        let again = makeClient(server, database: 3)
        #expect(try await again.send(["GET", "where"]) == .bulk("three"))
        for client in [three, zero, again] { await client.shutdown() }
        await server.stop()
    }

    @Test func aDatabaseRedisDoesNotHaveFailsTheConnection() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server, database: 999)
        let error = await redisError { try await client.send(["SET", "k", "v"]) }
        #expect(error?.isConnectionFailure == true)
        #expect(error?.description.contains("SELECT refused") == true)
        // Nothing ran in another database instead.
        #expect(try await makeClient(server).send(["DBSIZE"]) == .integer(0))
        await client.shutdown()
        await server.stop()
    }

    @Test func afterShutdownCommandsFailWithClosed() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        #expect(try await client.send(["PING"]) == .simpleString("PONG"))
        await client.shutdown()
        let error = await redisError { try await client.send(["PING"]) }
        #expect(error == .closed)
        await server.stop()
    }
}
