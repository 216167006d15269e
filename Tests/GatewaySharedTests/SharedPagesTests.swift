import GatewayCore
import GatewayShared
import GatewayTesting
import NIOCore
import NIOPosix
import Testing

/// Two replicas' views of one Redis: one leads a question, the other follows and reads what it came to;
/// invalidations from either reach both.
// One test at a time: each starts a redis-server, and dozens starting at once starve the other suites.
@Suite("SharedPages: replicas over one Redis", .serialized)
struct SharedPagesTests {
    let loop = MultiThreadedEventLoopGroup.singleton.next()

    private func replicas(_ server: RedisServer) -> (SharedPages, SharedPages, [RedisClient]) {
        let clients = [makeClient(server), makeClient(server)]
        let pages = clients.map {
            SharedPages(
                client: $0,
                prefix: "xg",
                credentialTag: "k1",
                // Far longer than a starved test can take between two steps.
                lockMilliseconds: 120_000,
                resultMilliseconds: 120_000
            )
        }
        return (pages[0], pages[1], clients)
    }

    private func key(_ query: String) throws -> CacheKey {
        CacheKey(credential: "k", query: try ListQuery.parse(Substring(query)))
    }

    /// Ends `flight` on `pages` with `status` and `body` as JSON, stored (a 200) for a minute.
    private func finish(
        _ pages: SharedPages,
        _ flight: SharedPages.Flight,
        status: Int,
        body: ByteBuffer = ByteBuffer(string: "{}")
    ) async throws -> Bool {
        try await pages.finish(
            flight,
            status: status,
            body: body,
            contentType: "application/json",
            lifeMilliseconds: 60_000,
            on: loop
        ).get()
    }

    @Test func oneLeadsTheOtherFollowsAndFindsThePage() async throws {
        let server = try await RedisServer.start()
        let (first, second, clients) = replicas(server)
        let question = try key("page_size=5&agent_id=a")

        guard case .lead(let flight) = try await first.enter(question, token: "r1", on: loop).get() else {
            Issue.record("the first replica should lead")
            return
        }
        guard case .follow(let left) = try await second.enter(question, token: "r2", on: loop).get() else {
            Issue.record("the second replica should follow")
            return
        }
        #expect(left > 0)
        #expect(try await second.result(for: question, on: loop).get() == nil, "nothing yet")

        let body = ByteBuffer(string: #"{"invocations":[],"has_more":false}"#)
        let stored = try await finish(first, flight, status: 200, body: body)
        #expect(stored)
        guard case .page(let found, let type, let age) = try await second.result(for: question, on: loop).get() else {
            Issue.record("the follower should read the page")
            return
        }
        #expect(found == body)
        #expect(type == "application/json")
        #expect(age >= 0)
        guard case .page = try await second.enter(question, token: "r3", on: loop).get() else {
            Issue.record("a later miss on any replica finds the page")
            return
        }
        for client in clients { await client.shutdown() }
        await server.stop()
    }

    @Test func aNon200ReachesTheFollowers() async throws {
        let server = try await RedisServer.start()
        let (first, second, clients) = replicas(server)
        let question = try key("agent_id=b")
        guard case .lead(let flight) = try await first.enter(question, token: "r1", on: loop).get() else {
            Issue.record("the first replica should lead")
            return
        }
        let stored = try await finish(first, flight, status: 429, body: ByteBuffer(string: #"{"detail":"slow down"}"#))
        #expect(!stored)
        let result = try await second.result(for: question, on: loop).get()
        #expect(
            result
                == .answer(
                    status: 429,
                    contentType: "application/json",
                    body: ByteBuffer(string: #"{"detail":"slow down"}"#)
                )
        )
        guard case .lead = try await second.enter(question, token: "r2", on: loop).get() else {
            Issue.record("a non-200 is not a page: the next miss leads")
            return
        }
        for client in clients { await client.shutdown() }
        await server.stop()
    }

    /// A purge on one replica while another leads: the page fetched before it is not stored after it, and
    /// pages stored before it are gone on every replica.
    @Test func anInvalidationOnOneReplicaHoldsOnTheOther() async throws {
        let server = try await RedisServer.start()
        let (first, second, clients) = replicas(server)
        let stored = try key("agent_id=a&page_size=7")
        let inFlight = try key("agent_id=a")
        let other = try key("agent_id=b")
        for question in [stored, other] {
            guard case .lead(let flight) = try await first.enter(question, token: "s", on: loop).get() else {
                Issue.record("should lead \(question)")
                return
            }
            _ = try await finish(first, flight, status: 200)
        }
        guard case .lead(let flight) = try await first.enter(inFlight, token: "r1", on: loop).get() else {
            Issue.record("should lead the question in flight")
            return
        }
        try await second.invalidate(agent: "a", on: loop).get()
        let late = try await finish(first, flight, status: 200)
        #expect(!late, "fetched before the purge, not stored after it")
        #expect(try await first.result(for: stored, on: loop).get() == nil)
        #expect(
            try await first.result(for: inFlight, on: loop).get()
                == .answer(status: 0, contentType: "", body: ByteBuffer()),
            "its followers are sent back to ask again (status 0), not given the page from before the purge"
        )
        guard case .page = try await first.result(for: other, on: loop).get() else {
            Issue.record("another agent's page stays")
            return
        }
        for client in clients { await client.shutdown() }
        await server.stop()
    }

    /// A question's next flight starts without the last one's result: its followers wait for its own.
    @Test func anEarlierFlightsResultNeverAnswersALaterOnesFollowers() async throws {
        let server = try await RedisServer.start()
        let (first, second, clients) = replicas(server)
        let question = try key("page_size=13")
        guard case .lead(let earlier) = try await first.enter(question, token: "r1", on: loop).get() else {
            Issue.record("should lead")
            return
        }
        _ = try await finish(first, earlier, status: 404)
        guard case .answer(404, _, _)? = try await second.result(for: question, on: loop).get() else {
            Issue.record("the first flight's followers get its 404")
            return
        }
        guard case .lead = try await second.enter(question, token: "r2", on: loop).get() else {
            Issue.record("the next request leads again")
            return
        }
        guard case .follow = try await first.enter(question, token: "r3", on: loop).get() else {
            Issue.record("and another follows it")
            return
        }
        #expect(try await first.result(for: question, on: loop).get() == nil, "not the earlier flight's 404")
        for client in clients { await client.shutdown() }
        await server.stop()
    }
}
