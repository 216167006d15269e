import GatewayCore
import GatewayShared
import GatewayTesting
import NIOCore
import Testing

/// Pub/sub on a connection of its own, re-subscribed after Redis comes back.
// One test at a time: each starts a redis-server, and dozens starting at once starve the other suites.
@Suite("RedisSubscription: messages, re-subscription after a restart, cancel", .serialized)
struct RedisSubscriptionTests {
    /// What the callbacks saw.
    final class Seen: Sendable {
        let messages = Locked<[(String, ByteBuffer)]>([])
        let states = Locked<[Bool]>([])

        func payloads(on channel: String) -> [ByteBuffer] {
            messages.withLock { messages in messages.filter { $0.0 == channel }.map { $0.1 } }
        }
    }

    static func subscribe(_ client: RedisClient, to channels: [String], seen: Seen) async throws -> RedisSubscription {
        try await client.subscribe(
            to: channels,
            onMessage: { channel, payload in seen.messages.withLock { $0.append((channel, payload)) } },
            onStateChange: { up in seen.states.withLock { $0.append(up) } }
        ).get()
    }

    @Test func deliversMessagesOnEachChannel() async throws {
        let server = try await RedisServer.start(password: "pubsub-pass")
        let client = makeClient(server)
        let seen = Seen()
        let subscription = try await Self.subscribe(client, to: ["news", "sport"], seen: seen)
        #expect(subscription.isSubscribed)
        #expect(seen.states.withLock { $0 } == [true])
        let binary: [UInt8] = [0, 13, 10, 255]
        #expect(try await client.send(["PUBLISH", "news", .bytes(binary)]) == .integer(1))
        #expect(try await client.send(["PUBLISH", "sport", "goal"]) == .integer(1))
        #expect(try await client.send(["PUBLISH", "weather", "rain"]) == .integer(0))
        #expect(await eventually { seen.messages.withLock { $0.count } == 2 })
        #expect(seen.payloads(on: "news") == [ByteBuffer(bytes: binary)])
        #expect(seen.payloads(on: "sport") == [ByteBuffer(string: "goal")])
        // The client's own commands still work beside the subscription.
        #expect(try await client.send(["PING"]) == .simpleString("PONG"))
        await client.shutdown()
        await server.stop()
    }

    @Test func subscribesAgainAfterRedisRestarts() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server, reconnectInterval: .milliseconds(100))
        let seen = Seen()
        let subscription = try await Self.subscribe(client, to: ["invalidate"], seen: seen)
        await server.stop()
        #expect(await eventually { seen.states.withLock { $0 } == [true, false] })
        #expect(!subscription.isSubscribed)
        try await server.restart()
        #expect(await eventually { seen.states.withLock { $0.last } == true })
        #expect(subscription.isSubscribed)
        let delivered = await eventually {
            _ = try? await client.send(["PUBLISH", "invalidate", "page-1"])
            return !seen.payloads(on: "invalidate").isEmpty
        }
        #expect(delivered)
        await client.shutdown()
        await server.stop()
    }

    @Test func aHungRedisIsReportedDownByTheKeepaliveAndComesBack() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server, timeout: .milliseconds(200))
        let seen = Seen()
        // Subscribed first, which a machine busy with other tests may not do within 200 ms at the first try.
        var subscription: RedisSubscription?
        for _ in 0..<20 where subscription == nil {
            subscription = try? await Self.subscribe(client, to: ["news"], seen: seen)
        }
        #expect(subscription != nil)
        server.suspend()
        #expect(await eventually { seen.states.withLock { $0 } == [true, false] })
        server.resume()
        #expect(await eventually { seen.states.withLock { $0.last } == true })
        await client.shutdown()
        await server.stop()
    }

    @Test func cancelStopsDelivery() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let seen = Seen()
        let subscription = try await Self.subscribe(client, to: ["news"], seen: seen)
        try await subscription.cancel().get()
        #expect(await eventually { (try? await client.send(["PUBLISH", "news", "late"])) == .integer(0) })
        #expect(seen.messages.withLock { $0.isEmpty })
        #expect(!subscription.isSubscribed)
        await client.shutdown()
        await server.stop()
    }

    @Test func theFirstAttemptFailingFailsTheFuture() async throws {
        let server = try await RedisServer.start(password: "secret-pass")
        let client = makeClient(server, password: "not-it")
        let seen = Seen()
        await #expect(throws: RedisError.self) {
            _ = try await Self.subscribe(client, to: ["news"], seen: seen)
        }
        #expect(seen.states.withLock { $0 }.allSatisfy { !$0 })
        await client.shutdown()
        await server.stop()
    }
}
