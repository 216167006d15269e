import GatewayCore
import GatewayShared
import GatewayTesting
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Two replicas' shared tiers over one real Redis: a follower is woken by the leader's message, an
/// invalidation reaches the other replica, fresh pages only are found, budgets are one bucket, and a Redis
/// that stops makes each replica work alone until it is back.
@Suite("RedisSharedTier: replicas over one Redis", .serialized)
struct RedisSharedTierTests {
    let loop = MultiThreadedEventLoopGroup.singleton.next()

    /// Invalidations a replica was told of.
    final class Invalidations: Sendable {
        let agents = Locked<[String?]>([])
        var all: [String?] { agents.withLock { $0 } }
    }

    private func tier(
        _ client: RedisClient,
        pollInterval: TimeAmount = .seconds(60),
        invalidations: Invalidations = Invalidations()
    ) -> RedisSharedTier {
        let tier = RedisSharedTier(
            client: client,
            prefix: "xg",
            credentialTag: "k1",
            health: SharedTierHealth(
                firstRetry: .milliseconds(50),
                longestRetry: .milliseconds(200),
                logger: Logger(label: "t")
            ),
            lockMilliseconds: 120_000,
            pollInterval: pollInterval,
            logger: Logger(label: "t"),
            onInvalidation: { agent in invalidations.agents.withLock { $0.append(agent) } }
        )
        tier.start()
        return tier
    }

    private func key(_ query: String) throws -> CacheKey {
        CacheKey(credential: "k", query: try ListQuery.parse(Substring(query)))
    }

    @Test func aFollowerIsWokenByTheLeadersMessageNotByPolling() async throws {
        let server = try await RedisServer.start()
        let clients = [makeClient(server), makeClient(server)]
        // Polling once a minute: only the message can wake the follower within the test.
        let leader = tier(clients[0])
        let follower = tier(clients[1])
        let question = try key("page_size=7&agent_id=a")

        guard case .lead(let flight) = try await leader.enter(question, freshMilliseconds: 30_000, on: loop).get()
        else {
            Issue.record("the first replica should lead")
            return
        }
        guard case .follow = try await follower.enter(question, freshMilliseconds: 30_000, on: loop).get() else {
            Issue.record("the second replica should follow")
            return
        }
        // The follower's subscription must be in place before the message goes out.
        #expect(
            await eventually {
                (try? await clients[1].send(["PUBSUB", "NUMSUB", "xg:{k1}:flights2"]))?.array?.last?.int == 2
            }
        )
        let waiting = follower.outcome(of: question, within: .seconds(50), on: loop)
        let body = ByteBuffer(string: #"{"invocations":[]}"#)
        try await leader.finish(
            flight,
            status: 200,
            body: body,
            contentType: "application/json",
            lifeMilliseconds: 60_000,
            on: loop
        ).get()
        let started = ContinuousClock.now
        let outcome = try await waiting.get()
        guard case .page(let page)? = outcome else {
            Issue.record("expected the page, got \(String(describing: outcome))")
            return
        }
        #expect(page.body == body)
        #expect(ContinuousClock.now - started < .seconds(40), "woken long before the minute's poll")

        guard case .page = try await follower.enter(question, freshMilliseconds: 30_000, on: loop).get() else {
            Issue.record("a later entry finds the page")
            return
        }
        guard case .lead = try await follower.enter(question, freshMilliseconds: 1, on: loop).get() else {
            Issue.record("a page older than its freshness is led again")
            return
        }
        await leader.shutdown()
        await follower.shutdown()
        for client in clients { await client.shutdown() }
        await server.stop()
    }

    /// A 200 the leader does not store (a TTL of 0) still reaches the followers, as an answer.
    @Test func aPageThatIsNotStoredReachesTheFollowersAsAnAnswer() async throws {
        let server = try await RedisServer.start()
        let clients = [makeClient(server), makeClient(server)]
        let leader = tier(clients[0])
        let follower = tier(clients[1], pollInterval: .milliseconds(100))
        let question = try key("page_size=12")
        guard case .lead(let flight) = try await leader.enter(question, freshMilliseconds: 1, on: loop).get() else {
            Issue.record("the first replica should lead")
            return
        }
        let waiting = follower.outcome(of: question, within: .seconds(50), on: loop)
        let body = ByteBuffer(string: #"{"invocations":[1]}"#)
        try await leader.finish(
            flight,
            status: 200,
            body: body,
            contentType: "application/json",
            lifeMilliseconds: 0,
            on: loop
        )
        .get()
        #expect(try await waiting.get() == .answer(status: 200, contentType: "application/json", body: body))
        #expect(try await clients[0].send(["KEYS", "xg:{k1}:page2:*"]).array?.isEmpty == true, "no page stored")
        await leader.shutdown()
        await follower.shutdown()
        for client in clients { await client.shutdown() }
        await server.stop()
    }

    @Test func anAbandonedFlightSendsItsFollowersBackWithNothing() async throws {
        let server = try await RedisServer.start()
        let clients = [makeClient(server), makeClient(server)]
        let leader = tier(clients[0])
        let follower = tier(clients[1], pollInterval: .milliseconds(100))
        let question = try key("page_size=8")
        guard case .lead(let flight) = try await leader.enter(question, freshMilliseconds: 30_000, on: loop).get()
        else {
            Issue.record("the first replica should lead")
            return
        }
        let waiting = follower.outcome(of: question, within: .seconds(50), on: loop)
        try await leader.abandon(flight, on: loop).get()
        #expect(try await waiting.get() == nil)
        guard case .lead = try await follower.enter(question, freshMilliseconds: 30_000, on: loop).get() else {
            Issue.record("the lock was released: the follower leads")
            return
        }
        await leader.shutdown()
        await follower.shutdown()
        for client in clients { await client.shutdown() }
        await server.stop()
    }

    @Test func anInvalidationReachesTheOtherReplica() async throws {
        let server = try await RedisServer.start()
        let clients = [makeClient(server), makeClient(server)]
        let heard = Invalidations()
        let first = tier(clients[0])
        let second = tier(clients[1], invalidations: heard)
        #expect(
            await eventually {
                (try? await clients[1].send(["PUBSUB", "NUMSUB", "xg:{k1}:invalidations"]))?.array?.last?.int == 2
            }
        )
        try await first.invalidate(agent: "agent_7").get()
        try await first.invalidate(agent: nil).get()
        #expect(await eventually { heard.all == ["agent_7", nil] })
        await first.shutdown()
        await second.shutdown()
        for client in clients { await client.shutdown() }
        await server.stop()
    }

    @Test func aTeamsBudgetIsOneBucketForEveryReplica() async throws {
        let server = try await RedisServer.start()
        let clients = [makeClient(server), makeClient(server)]
        let tiers = [tier(clients[0]), tier(clients[1])]
        var allowed = 0
        for round in 0..<6 {
            let answer = try await tiers[round % 2].spend(team: "red", perMinute: 3, on: loop).get()
            let decision = answer?.decision
            if decision == .allowed {
                allowed += 1
                // What the one bucket holds after this spend (a token comes back every 20 s: a hair more).
                let left = try #require(answer?.tokensLeft)
                #expect(left >= Double(2 - round) && left < Double(2 - round) + 0.1, "round \(round): \(left)")
            }
            if round >= 3 {
                guard case .denied(let retryAfter)? = decision else {
                    Issue.record("round \(round): \(String(describing: decision))")
                    continue
                }
                #expect((1...20).contains(retryAfter))
            }
        }
        #expect(allowed == 3)
        #expect(
            try await tiers[0].spend(team: "blue", perMinute: 3, on: loop).get()?.decision == .allowed,
            "teams apart"
        )
        for tier in tiers { await tier.shutdown() }
        for client in clients { await client.shutdown() }
        await server.stop()
    }

    @Test func aStoppedRedisMakesTheReplicaWorkAloneUntilItIsBack() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server, timeout: .milliseconds(500), reconnectInterval: .milliseconds(50))
        let shared = tier(client)
        let question = try key("page_size=9")
        #expect(try await shared.spend(team: "red", perMinute: 5, on: loop).get()?.decision == .allowed)
        #expect(shared.isUp)

        await server.stop()
        let entry = try await shared.enter(question, freshMilliseconds: 30_000, on: loop).get()
        #expect(entry == .alone)
        #expect(!shared.isUp)
        #expect(
            try await shared.spend(team: "red", perMinute: 5, on: loop).get() == nil,
            "the caller's own ledger decides"
        )

        try await server.restart()
        #expect(
            await eventually {
                _ = try? await shared.enter(question, freshMilliseconds: 30_000, on: loop).get()
                return shared.isUp
            }
        )
        await shared.shutdown()
        await client.shutdown()
        await server.stop()
    }
}
