import GatewayCore
import GatewayShared
import GatewayTesting
import Logging
import NIOCore
import NIOPosix
import Testing

/// A client of `server`, on the shared event loops, with a timeout generous enough for a loaded machine
/// unless a test is about timeouts.
func makeClient(
    _ server: RedisServer,
    database: Int = 0,
    password: String?? = .none,
    timeout: TimeAmount = .seconds(5),
    reconnectInterval: TimeAmount = .milliseconds(100)
) -> RedisClient {
    var endpoint = server.endpoint(database: database)
    if case .some(let override) = password {
        endpoint = RedisEndpoint(
            address: endpoint.address,
            password: override.map(Secret.init),
            database: database
        )
    }
    return RedisClient(
        endpoint: endpoint,
        timeout: timeout,
        group: MultiThreadedEventLoopGroup.singleton,
        logger: Logger(label: "redis-test"),
        reconnectInterval: reconnectInterval
    )
}

/// Polls `condition` every 20 ms until it holds or `limit` has passed; whether it held.
func eventually(within limit: Duration = .seconds(20), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

/// The error `body` fails with, as a ``RedisError``; records an issue when it succeeds or fails otherwise.
func redisError(_ body: () async throws -> RESPValue) async -> RedisError? {
    do {
        let value = try await body()
        Issue.record("succeeded with \(value)")
        return nil
    } catch let error as RedisError {
        return error
    } catch {
        Issue.record("failed with \(error), not a RedisError")
        return nil
    }
}

extension RESPValue {
    /// A bulk string of `text`'s bytes.
    static func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }
}
