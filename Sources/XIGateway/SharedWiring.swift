import GatewayCore
import GatewayShared
import Logging
import NIOCore

/// The shared tier of a replica whose `REDIS_URL` is set: one Redis client on the serving event loops,
/// one health for every shared component, and the tier the request path asks.
struct SharedWiring: Sendable {
    let client: RedisClient
    let health: SharedTierHealth
    let tier: RedisSharedTier
    let governor: SharedGovernor

    init(
        endpoint: RedisEndpoint,
        configuration: GatewayConfiguration,
        cache: ResponseCache,
        group: any EventLoopGroup,
        tls: RedisTLS?,
        logger: Logger
    ) {
        client = RedisClient(
            endpoint: endpoint,
            timeout: .milliseconds(Int64(configuration.redisTimeoutMilliseconds)),
            group: group,
            logger: logger,
            tls: tls
        )
        health = SharedTierHealth(logger: logger)
        // A leader holds a question while it may wait for a slot and then for the upstream.
        let lock = configuration.upstreamQueueTimeoutMilliseconds + configuration.upstreamTimeoutMilliseconds + 2_000
        tier = RedisSharedTier(
            client: client,
            prefix: configuration.redisKeyPrefix,
            credentialTag: Self.credentialTag(configuration.apiKey),
            health: health,
            lockMilliseconds: lock,
            logger: logger,
            onInvalidation: { agent in cache.invalidate(agent: agent) }
        )
        governor = SharedGovernor(
            client: client,
            prefix: configuration.redisKeyPrefix,
            credentialTag: Self.credentialTag(configuration.apiKey),
            configuration: XIGateway.governorConfiguration(configuration),
            fallbackMaxConcurrency: configuration.fallbackMaxConcurrency,
            // A lease outlives the upstream request it covers, and expires soon after a replica that died.
            leaseMilliseconds: configuration.upstreamTimeoutMilliseconds + 5_000,
            health: health,
            logger: logger
        )
    }

    /// A short digest of the upstream key (never the key): the keys of gateways with different upstream
    /// keys never meet in one Redis.
    static func credentialTag(_ apiKey: Secret) -> String {
        String(SHA256.hexDigest(apiKey.revealed.utf8).prefix(12))
    }

    func shutdown() async {
        governor.shutdown()
        await tier.shutdown()
        await client.shutdown()
    }
}
