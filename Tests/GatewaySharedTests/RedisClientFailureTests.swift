import GatewayCore
import GatewayShared
import GatewayTesting
import Logging
import NIOCore
import NIOPosix
import Testing

/// Passwords, timeouts, and a Redis that goes away and comes back.
// One test at a time: each starts a redis-server, and dozens starting at once starve the other suites.
@Suite("RedisClient: AUTH, timeouts, a lost and restarted Redis", .serialized)
struct RedisClientFailureTests {
    @Test func authenticatesWithThePassword() async throws {
        let server = try await RedisServer.start(password: "right-pass@:/word")
        let client = makeClient(server)
        #expect(try await client.send(["PING"]) == .simpleString("PONG"))
        // The URL the fixture shows parses to the same endpoint (the password %-escaped).
        let parsed = try RedisEndpoint(server.url)
        #expect(parsed.password?.revealed == "right-pass@:/word")
        let named = RedisClient(
            endpoint: RedisEndpoint(address: parsed.address, username: "default", password: parsed.password),
            timeout: .seconds(5),
            group: MultiThreadedEventLoopGroup.singleton,
            logger: .init(label: "redis-test")
        )
        #expect(try await named.send(["PING"]) == .simpleString("PONG"), "AUTH user password")
        await client.shutdown()
        await named.shutdown()
        await server.stop()
    }

    @Test func aWrongPasswordFailsWithoutShowingIt() async throws {
        let server = try await RedisServer.start(password: "right-password")
        let client = makeClient(server, password: "wrong-password-42")
        let error = try #require(await redisError { try await client.send(["PING"]) })
        #expect(error.isConnectionFailure)
        let shown = "\(error) \(error.shortDescription) \(String(reflecting: error))"
        #expect(shown.contains("AUTH refused"), "\(shown)")
        #expect(!shown.contains("wrong-password-42"))
        #expect(!shown.contains("right-password"))
        let anonymous = makeClient(server, password: .some(nil))
        let refused = try #require(await redisError { try await anonymous.send(["GET", "k"]) })
        #expect(refused.serverMessage?.hasPrefix("NOAUTH") == true)
        await client.shutdown()
        await anonymous.shutdown()
        await server.stop()
    }

    @Test func aHungRedisTimesOutAndTheClientRecovers() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server, timeout: .milliseconds(100))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // Connected first, which a machine busy with other tests may not do within 100 ms at the first try.
        #expect(await eventually { (try? await client.send(["PING"], on: loop).get()) == .simpleString("PONG") })
        server.suspend()
        let started = ContinuousClock.now
        let error = await redisError { try await client.send(["GET", "k"], on: loop).get() }
        #expect(error == .timeout)
        // Far above the 100 ms timeout, so that only a client left waiting on the hung Redis fails it, not a busy
        // machine (this suite also runs under the sanitizers).
        #expect(ContinuousClock.now - started < .seconds(20), "bounded by the timeout, not by Redis")
        server.resume()
        let recovered = await eventually {
            (try? await client.send(["PING"], on: loop).get()) == .simpleString("PONG")
        }
        #expect(recovered)
        await client.shutdown()
        await server.stop()
    }

    @Test func aPausedClientTimesOutToo() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server, timeout: .milliseconds(100))
        let admin = makeClient(server)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        #expect(await eventually { (try? await client.send(["PING"], on: loop).get()) == .simpleString("PONG") })
        // CLIENT PAUSE holds every other client's commands for 5 s, on a working server: long enough that a busy
        // machine still sends the command below inside the pause.
        #expect(try await admin.send(["CLIENT", "PAUSE", 5000]) == .simpleString("OK"))
        let error = await redisError { try await client.send(["INCR", "n"], on: loop).get() }
        #expect(error == .timeout)
        #expect(await eventually { (try? await client.send(["PING"], on: loop).get()) == .simpleString("PONG") })
        await client.shutdown()
        await admin.shutdown()
        await server.stop()
    }

    @Test func aStoppedRedisFailsCommandsFastAndARestartedOneIsUsedAgain() async throws {
        let server = try await RedisServer.start()
        // A timeout far above the bounds below: a failure that waited for it would show.
        let client = makeClient(server, timeout: .seconds(60), reconnectInterval: .milliseconds(200))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        _ = try await client.send(["SET", "k", "v"], on: loop).get()
        // A command waiting when Redis goes away fails then, not after the timeout.
        let blocked = client.send(["BLPOP", "no-list", 0], on: loop)
        try await Task.sleep(for: .milliseconds(50))
        let stopped = ContinuousClock.now
        await server.stop()
        let lost = await redisError { try await blocked.get() }
        #expect(lost?.isConnectionFailure == true)
        #expect(ContinuousClock.now - stopped < .seconds(20))
        for _ in 0..<20 {
            let started = ContinuousClock.now
            let error = await redisError { try await client.send(["GET", "k"], on: loop).get() }
            #expect(error?.isConnectionFailure == true)
            #expect(ContinuousClock.now - started < .seconds(20), "failed fast")
        }
        try await server.restart()
        let back = await eventually {
            (try? await client.send(["SET", "k", "again"], on: loop).get()) == .simpleString("OK")
        }
        #expect(back)
        #expect(try await client.send(["GET", "k"], on: loop).get() == .bulk("again"))
        await client.shutdown()
        await server.stop()
    }

    @Test func aRedisThatIsNotThereFailsFast() async throws {
        // A server that was never started: nothing listens, and the client says so without hanging.
        let client = RedisClient(
            endpoint: RedisEndpoint(address: .unix(path: "/tmp/xg-redis-none/redis.sock")),
            // Far above the bound below: a client that waited for it rather than failing at once would show.
            timeout: .seconds(60),
            group: MultiThreadedEventLoopGroup.singleton,
            logger: .init(label: "redis-test")
        )
        let started = ContinuousClock.now
        let error = await redisError { try await client.send(["PING"]) }
        #expect(error?.isConnectionFailure == true)
        #expect(ContinuousClock.now - started < .seconds(20))
        await client.shutdown()
    }
}
