import GatewayCore
import GatewayShared
import GatewayTesting
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import GatewayShared

/// Two replicas' governors over one Redis: one limit, one back-off and one learned limit for both, leases
/// that outlive no replica, and a replica that works alone while Redis is away.
// One test at a time: each starts a redis-server, and dozens starting at once starve the other suites.
@Suite("SharedGovernor: replicas over one Redis", .serialized)
struct SharedGovernorTests {
    static let keyBase = "xg:{k1}:"
    let loop = MultiThreadedEventLoopGroup.singleton.next()

    /// A replica's governor. Queue timeouts and leases are far longer than a starved test takes between two
    /// steps, unless a test is about them.
    private func governor(
        _ client: RedisClient,
        health: SharedTierHealth? = nil,
        maxConcurrency: Int = 2,
        maxQueue: Int = 100,
        queueTimeout: TimeAmount = .seconds(120),
        fallbackMaxConcurrency: Int = 1,
        leaseMilliseconds: Int = 120_000,
        pollInterval: TimeAmount = .milliseconds(100)
    ) -> SharedGovernor {
        SharedGovernor(
            client: client,
            prefix: "xg",
            credentialTag: "k1",
            configuration: UpstreamGovernor.Configuration(
                maxConcurrency: maxConcurrency,
                maxQueue: maxQueue,
                queueTimeout: queueTimeout,
                backoffMaxSeconds: 8
            ),
            fallbackMaxConcurrency: fallbackMaxConcurrency,
            leaseMilliseconds: leaseMilliseconds,
            health: health ?? Self.health(),
            pollInterval: pollInterval,
            logger: Logger(label: "governor-test")
        )
    }

    private static func health() -> SharedTierHealth {
        SharedTierHealth(
            firstRetry: .milliseconds(50),
            longestRetry: .milliseconds(200),
            logger: Logger(label: "health")
        )
    }

    /// Leases held in Redis right now.
    private func leases(_ client: RedisClient) async throws -> Int {
        try await client.send(["ZCARD", .string(Self.keyBase + "leases")], on: loop).get().int ?? -1
    }

    /// The rejection `future` fails with; records an issue when it succeeds or fails otherwise.
    private func rejection(_ future: EventLoopFuture<Void>) async -> UpstreamGovernor.Rejection? {
        do {
            try await future.get()
            Issue.record("granted, not refused")
            return nil
        } catch let rejection as UpstreamGovernor.Rejection {
            return rejection
        } catch {
            Issue.record("failed with \(error), not a rejection")
            return nil
        }
    }

    @Test func neverMoreThanTheLimitAcrossReplicas() async throws {
        let server = try await RedisServer.start()
        let clients = [makeClient(server), makeClient(server)]
        let replicas = clients.map { governor($0) }
        // Per replica: slots granted and not yet released; and the most held at once across both.
        let held = Locked((counts: [0, 0], most: 0, granted: 0))
        for index in 0..<10 {
            let replica = index % 2
            replicas[replica].acquire(on: loop).whenSuccess {
                held.withLock { held in
                    held.counts[replica] += 1
                    held.granted += 1
                    held.most = max(held.most, held.counts[0] + held.counts[1])
                }
            }
        }
        for round in 0...8 {
            #expect(await eventually { held.withLock { $0.granted } == min(10, round + 2) })
            if round == 4 {
                // Redis lost its scripts (a restart or SCRIPT FLUSH): they are loaded again on NOSCRIPT.
                _ = try await clients[0].send(["SCRIPT", "FLUSH"], on: loop).get()
            }
            // Counted as released before Redis frees the lease, so `most` can only overstate.
            let replica = held.withLock { held -> Int in
                let replica = held.counts[0] > 0 ? 0 : 1
                held.counts[replica] -= 1
                return replica
            }
            replicas[replica].release(.success)
        }
        #expect(await eventually { held.withLock { $0.granted } == 10 })
        #expect(held.withLock { $0.most } == 2)
        #expect(replicas.map(\.snapshot.queued) == [0, 0])
        #expect(replicas.map(\.snapshot.limit) == [2, 2])
        for replica in replicas { replica.shutdown() }
        for client in clients { await client.shutdown() }
        await server.stop()
    }

    @Test func aFreedSlotWakesAWaiterOnTheOtherReplicaByItsMessage() async throws {
        let server = try await RedisServer.start()
        let clients = [makeClient(server), makeClient(server)]
        // No poll within the test: only the message can wake the waiter.
        let first = governor(clients[0], pollInterval: .hours(1))
        let second = governor(clients[1], pollInterval: .hours(1))
        try await first.acquire(on: loop).get()
        try await first.acquire(on: loop).get()
        let waiting = second.acquire(on: loop)
        #expect(await eventually { second.snapshot.queued == 1 && second.isListening })
        first.release(.success)
        try await waiting.get()
        #expect(second.snapshot.inFlight == 1)
        #expect(try await leases(clients[0]) == 2)
        for replica in [first, second] { replica.shutdown() }
        for client in clients { await client.shutdown() }
        await server.stop()
    }

    @Test func a429OnOneReplicaBacksOffTheOther() async throws {
        let server = try await RedisServer.start()
        let clients = [makeClient(server), makeClient(server)]
        let first = governor(clients[0], maxConcurrency: 1)
        let second = governor(clients[1], maxConcurrency: 1)
        try await first.acquire(on: loop).get()
        let waiting = second.acquire(on: loop)
        #expect(await eventually { second.snapshot.queued == 1 })
        first.release(.rateLimited(retryAfterSeconds: 60, maximumConcurrent: nil))
        guard case .backingOff(let left) = await rejection(waiting) else {
            Issue.record("the waiter on the other replica is refused with the back-off")
            return
        }
        #expect((1...60).contains(left))
        guard case .backingOff(let later) = await rejection(second.acquire(on: loop)) else {
            Issue.record("a new request on the other replica is refused with the back-off")
            return
        }
        #expect((1...60).contains(later))
        #expect((1...60).contains(second.snapshot.backoffSecondsLeft))
        guard case .backingOff = await rejection(first.acquire(on: loop)) else {
            Issue.record("and on the replica that got the 429")
            return
        }
        let pttl = try await clients[0].send(["PTTL", .string(Self.keyBase + "backoff")], on: loop).get().int ?? 0
        #expect((1...60_000).contains(pttl), "timed by Redis")
        for replica in [first, second] { replica.shutdown() }
        for client in clients { await client.shutdown() }
        await server.stop()
    }

    @Test func theLearnedLimitIsSharedAndRaisedBySuccesses() async throws {
        let server = try await RedisServer.start()
        let clients = [makeClient(server), makeClient(server)]
        let first = governor(clients[0], maxConcurrency: 3)
        let second = governor(clients[1], maxConcurrency: 3)
        try await first.acquire(on: loop).get()
        // `Retry-After: 0`: no back-off, only the upstream's own maximum.
        first.release(.rateLimited(retryAfterSeconds: 0, maximumConcurrent: 1))
        #expect(await eventually { (try? await leases(clients[0])) == 0 })
        try await second.acquire(on: loop).get()
        #expect(second.snapshot.limit == 1)
        let waiting = first.acquire(on: loop)
        #expect(await eventually { first.snapshot.queued == 1 }, "the other replica is held to the learned 1")
        second.release(.success)
        try await waiting.get()
        first.release(.success)
        // Successes on either replica count together: after as many as the local governor needs, one more.
        for round in 2..<UpstreamGovernor.successesToRaiseLimit {
            let replica = round % 2 == 0 ? first : second
            try await replica.acquire(on: loop).get()
            replica.release(.success)
            #expect(await eventually { (try? await leases(clients[0])) == 0 })
        }
        try await second.acquire(on: loop).get()
        try await first.acquire(on: loop).get()
        #expect(first.snapshot.limit == 2)
        for replica in [first, second] { replica.shutdown() }
        for client in clients { await client.shutdown() }
        await server.stop()
    }

    /// 429s without `Retry-After` back off 1 s, 2 s, 4 s... up to the maximum (8 s here), as the local
    /// governor does; a success starts again from 1 s.
    @Test func theExponentialBackoffIsSharedAndBounded() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let configuration = UpstreamGovernor.Configuration(
            maxConcurrency: 2,
            maxQueue: 1,
            queueTimeout: .seconds(1),
            backoffMaxSeconds: 8
        )
        let keys: [RedisArgument] = ["t:{c}:leases", "t:{c}:backoff", "t:{c}:learned"]
        func release(_ outcome: UpstreamGovernor.Outcome) async throws -> GovernorScripts.ReleaseReply {
            let reply = try await client.evaluate(
                GovernorScripts.release,
                keys: keys,
                arguments: GovernorScripts.releaseArguments(
                    token: "x",
                    outcome: outcome,
                    configuration: configuration,
                    channel: "t:{c}:slots"
                ),
                on: loop
            ).get()
            return try GovernorScripts.ReleaseReply(reply)
        }
        var delays: [Int] = []
        for _ in 0..<5 {
            delays.append(
                try await release(.rateLimited(retryAfterSeconds: nil, maximumConcurrent: nil)).backoffMilliseconds
            )
        }
        #expect(delays == [1_000, 2_000, 4_000, 8_000, 8_000])
        _ = try await client.send(["DEL", "t:{c}:backoff"], on: loop).get()
        #expect(try await release(.success) == .init(backoffMilliseconds: 0, limit: 2))
        #expect(
            try await release(.rateLimited(retryAfterSeconds: nil, maximumConcurrent: nil)).backoffMilliseconds == 1_000
        )
        await client.shutdown()
        await server.stop()
    }

    @Test func aDeadReplicasLeaseExpiresAndFreesItsSlot() async throws {
        let server = try await RedisServer.start()
        let clients = [makeClient(server), makeClient(server)]
        let dead = governor(clients[0], maxConcurrency: 1, leaseMilliseconds: 300)
        let alive = governor(clients[1], maxConcurrency: 1)
        try await dead.acquire(on: loop).get()
        dead.shutdown()
        await clients[0].shutdown()
        // Never released: the lease runs out by Redis's clock, and the poll finds the slot free.
        try await alive.acquire(on: loop).get()
        #expect(try await leases(clients[1]) == 1)
        alive.shutdown()
        await clients[1].shutdown()
        await server.stop()
    }

    @Test func aFullQueueRefusesAndAWaiterTimesOut() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let replica = governor(client, maxConcurrency: 1, maxQueue: 1)
        try await replica.acquire(on: loop).get()
        let waiting = replica.acquire(on: loop)
        #expect(await eventually { replica.snapshot.queued == 1 })
        #expect(await rejection(replica.acquire(on: loop)) == .queueFull)
        replica.release(.success)
        try await waiting.get()

        // Governors of other replicas, over the same keys: the one slot is still leased.
        let impatient = governor(client, maxConcurrency: 1, maxQueue: 1, queueTimeout: .milliseconds(200))
        #expect(await rejection(impatient.acquire(on: loop)) == .queueTimeout)
        #expect(impatient.snapshot == .init(inFlight: 0, queued: 0, limit: 1, backoffSecondsLeft: 0))
        let noQueue = governor(client, maxConcurrency: 1, maxQueue: 0)
        #expect(await rejection(noQueue.acquire(on: loop)) == .queueFull, "no queue: refused when full")
        for governor in [replica, impatient, noQueue] { governor.shutdown() }
        await client.shutdown()
        await server.stop()
    }

    @Test func aReloadedLimitLetsWaitersThroughAtOnce() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        // No poll within the test: the reload itself wakes the queue.
        let replica = governor(client, maxConcurrency: 1, pollInterval: .hours(1))
        try await replica.acquire(on: loop).get()
        let waiting = replica.acquire(on: loop)
        #expect(await eventually { replica.snapshot.queued == 1 })
        replica.update(
            UpstreamGovernor.Configuration(
                maxConcurrency: 2,
                maxQueue: 100,
                queueTimeout: .seconds(120),
                backoffMaxSeconds: 8
            ),
            fallbackMaxConcurrency: 3
        )
        try await waiting.get()
        #expect(replica.snapshot == .init(inFlight: 2, queued: 0, limit: 2, backoffSecondsLeft: 0))
        #expect(try await leases(client) == 2)
        replica.shutdown()
        await client.shutdown()
        await server.stop()
    }

    @Test func aHungRedisLeavesTheReplicaAloneAfterOneTimeout() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server, timeout: .milliseconds(200))
        let health = Self.health()
        let replica = governor(client, health: health, fallbackMaxConcurrency: 1)
        server.suspend()
        // The first request waits for Redis's timeout, then takes a fallback slot; the next queues behind it.
        try await replica.acquire(on: loop).get()
        #expect(!health.isUp)
        let waiting = replica.acquire(on: loop)
        #expect(await eventually { replica.snapshot.queued == 1 })
        replica.release(.success)
        try await waiting.get()
        replica.release(.success)
        server.resume()
        #expect(replica.snapshot.inFlight == 0)
        replica.shutdown()
        await client.shutdown()
        await server.stop()
    }

    @Test func aStoppedRedisLeavesTheReplicaAloneAndARestartedOneIsSharedAgain() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let health = Self.health()
        let replica = governor(client, health: health, maxConcurrency: 2, fallbackMaxConcurrency: 1)
        try await replica.acquire(on: loop).get()
        replica.release(.success)
        #expect(await eventually { (try? await leases(client)) == 0 })
        await server.stop()

        let granted = Locked(0)
        let futures = (0..<3).map { _ in replica.acquire(on: loop) }
        for future in futures { future.whenSuccess { granted.withLock { $0 += 1 } } }
        #expect(await eventually { granted.withLock { $0 } == 1 && replica.snapshot.queued == 2 })
        #expect(!health.isUp)
        #expect(replica.snapshot.limit == 1, "the fallback limit while alone")
        for expected in 2...3 {
            replica.release(.success)
            #expect(await eventually { granted.withLock { $0 } == expected })
            #expect(replica.snapshot.inFlight == 1, "never more than the fallback limit")
        }
        replica.release(.success)
        for future in futures { try await future.get() }

        try await server.restart()
        // Back once a probe reaches Redis; then the shared limit, in Redis, is the one in force.
        #expect(
            await eventually {
                guard (try? await replica.acquire(on: loop).get()) != nil else { return false }
                replica.release(.success)
                return health.isUp
            }
        )
        #expect(await eventually { (try? await leases(client)) == 0 })
        try await replica.acquire(on: loop).get()
        try await replica.acquire(on: loop).get()
        #expect(try await leases(client) == 2)
        #expect(replica.snapshot == .init(inFlight: 2, queued: 0, limit: 2, backoffSecondsLeft: 0))
        replica.shutdown()
        await client.shutdown()
        await server.stop()
    }

    /// A lease whose release Redis could not take is given back when it answers again; and while it is up,
    /// the answer of a request that held a fallback slot still reaches every replica.
    @Test func whatRedisMissedWhileAwayReachesItWhenItIsBack() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let health = Self.health()
        let replica = governor(client, health: health, maxConcurrency: 2, fallbackMaxConcurrency: 2)
        try await replica.acquire(on: loop).get()
        await server.stop()
        replica.release(.success)
        #expect(await eventually { replica.unreleasedLeases == 1 })
        #expect(!health.isUp)
        // A fallback slot, held across Redis's return.
        try await replica.acquire(on: loop).get()

        try await server.restart()
        // Requests probe Redis until one takes a lease (the first answer from Redis brings the tier up).
        #expect(
            await eventually {
                guard (try? await replica.acquire(on: loop).get()) != nil else { return false }
                if health.isUp { return true }
                replica.release(.other)
                return false
            }
        )
        #expect(await eventually { replica.unreleasedLeases == 0 })
        #expect(replica.snapshot.inFlight == 2, "a lease and a fallback slot")
        // While up, a release gives back the fallback slot first; its 429 is still Redis's to share.
        replica.release(.rateLimited(retryAfterSeconds: 60, maximumConcurrent: nil))
        #expect(
            await eventually {
                let left = try? await client.send(["PTTL", .string(Self.keyBase + "backoff")], on: loop).get().int
                return (1...60_000).contains(left ?? 0)
            }
        )
        #expect(try await leases(client) == 1)
        replica.release(.success)
        #expect(await eventually { (try? await leases(client)) == 0 })
        #expect(replica.snapshot.inFlight == 0)
        replica.shutdown()
        await client.shutdown()
        await server.stop()
    }

    /// A 429 on a lease while Redis cannot be told still backs this replica off, on its own.
    @Test func a429RedisCannotBeToldOfBacksThisReplicaOff() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let health = Self.health()
        let replica = governor(client, health: health, maxConcurrency: 2, fallbackMaxConcurrency: 2)
        try await replica.acquire(on: loop).get()
        await server.stop()
        replica.release(.rateLimited(retryAfterSeconds: 120, maximumConcurrent: nil))
        #expect(await eventually { replica.unreleasedLeases == 1 })
        #expect(!health.isUp)
        guard case .backingOff(let left)? = await rejection(replica.acquire(on: loop)) else {
            Issue.record("the replica should back off on its own")
            return
        }
        #expect((100...120).contains(left))
        #expect(replica.snapshot.backoffSecondsLeft > 100)
        replica.shutdown()
        await client.shutdown()
    }
}
