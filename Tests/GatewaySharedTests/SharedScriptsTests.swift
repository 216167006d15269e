import GatewayShared
import GatewayTesting
import NIOCore
import NIOPosix
import Testing

@testable import GatewayShared

/// The shared tier's scripts against a real Redis: flights led by one replica at a time, pages stored
/// only under the generations they were fetched in, invalidation as one step.
// One test at a time: each starts a redis-server, and dozens starting at once starve the other suites.
@Suite("SharedScripts", .serialized)
struct SharedScriptsTests {
    /// The keys of one question, as the shared tier names them.
    struct Keys {
        var query: String
        var page: RedisArgument { .string("t:{c}:page:" + query) }
        var lock: RedisArgument { .string("t:{c}:lock:" + query) }
        var result: RedisArgument { .string("t:{c}:result:" + query) }
        static let generations: RedisArgument = "t:{c}:gen"
    }

    let loop = MultiThreadedEventLoopGroup.singleton.next()

    private func enter(_ client: RedisClient, _ keys: Keys, agent: String, token: String) async throws -> [String] {
        let reply = try await client.evaluate(
            SharedScripts.enterFlight,
            keys: [keys.page, Keys.generations, keys.lock],
            arguments: [.string(agent), .string(token), 120_000],
            on: loop
        ).get()
        return (reply.array ?? []).map { $0.string ?? "" }
    }

    private func finish(
        _ client: RedisClient,
        _ keys: Keys,
        agent: String,
        token: String,
        generations: (String, String),
        status: Int = 200,
        body: [UInt8] = Array("{\"p\":1}".utf8),
        lifeMilliseconds: Int = 60_000
    ) async throws -> Int? {
        try await client.evaluate(
            SharedScripts.finishFlight,
            keys: [keys.page, Keys.generations, keys.lock, keys.result],
            arguments: [
                .string(agent), .string(token), .string(generations.0), .string(generations.1), .integer(status),
                .bytes(body), "application/json", .integer(lifeMilliseconds), 120_000, "t:{c}:done",
                .string(keys.query),
            ],
            on: loop
        ).get().int
    }

    private func invalidate(_ client: RedisClient, agent: String) async throws {
        _ = try await client.evaluate(
            SharedScripts.invalidate,
            keys: [Keys.generations],
            arguments: [.string(agent), "t:{c}:purge", .string(agent)],
            on: loop
        ).get()
    }

    /// Leads and stores a page for `keys`.
    private func store(_ client: RedisClient, _ keys: Keys, agent: String, body: [UInt8]) async throws {
        let entry = try await enter(client, keys, agent: agent, token: "store")
        #expect(entry.first == "lead")
        let stored = try await finish(
            client,
            keys,
            agent: agent,
            token: "store",
            generations: (entry[1], entry[2]),
            body: body
        )
        #expect(stored == 1)
    }

    @Test func oneReplicaLeadsTheOthersFollowThenEveryoneFindsThePage() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let keys = Keys(query: "agent_id=a&page_size=30")

        let lead = try await enter(client, keys, agent: "a", token: "replica-1")
        #expect(lead == ["lead", "0", "0"])
        let follow = try await enter(client, keys, agent: "a", token: "replica-2")
        #expect(follow.first == "follow")
        #expect((Int(follow.last ?? "") ?? 0) > 0, "the lock's time left")

        let body: [UInt8] = Array("{\"x\":\"a\r\nb\u{0}c\"}".utf8)
        #expect(
            try await finish(client, keys, agent: "a", token: "replica-1", generations: ("0", "0"), body: body) == 1
        )
        #expect(try await client.send(["EXISTS", keys.lock]) == .integer(0), "the lock is released")

        let found =
            try await client.evaluate(
                SharedScripts.enterFlight,
                keys: [keys.page, Keys.generations, keys.lock],
                arguments: ["a", "replica-3", 120_000],
                on: loop
            ).get().array ?? []
        #expect(found.first?.string == "page")
        #expect(found.count == 4)
        if found.count == 4 {
            #expect(found[1].bytes == ByteBuffer(bytes: body), "the exact bytes, \\r\\n and NUL included")
            #expect(found[2].string == "application/json")
            #expect((0..<60_000).contains(Int(found[3].string ?? "") ?? -1), "its age, by Redis's clock")
        }
        let ttl = try await client.send(["PTTL", keys.page]).int ?? 0
        #expect((1...60_000).contains(ttl), "expires after the TTL and stale window")
        await client.shutdown()
        await server.stop()
    }

    /// A page fetched before a purge is never stored after it.
    @Test func aPurgeDuringAFlightKeepsItsPageOut() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let keys = Keys(query: "agent_id=a&page_size=30")
        let lead = try await enter(client, keys, agent: "a", token: "r1")
        try await invalidate(client, agent: "a")
        let stored = try await finish(client, keys, agent: "a", token: "r1", generations: (lead[1], lead[2]))
        #expect(stored == 0)
        let next = try await enter(client, keys, agent: "a", token: "r2")
        #expect(next == ["lead", "0", "1"], "no page: the next request leads, under the new generation")
        await client.shutdown()
        await server.stop()
    }

    /// One agent's change drops its pages and those without an agent filter; another agent's stay. A change
    /// that cannot be pinned to an agent drops every page.
    @Test func invalidationDropsTheRightPages() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let pages = [
            ("a", Keys(query: "agent_id=a")), ("b", Keys(query: "agent_id=b")), ("", Keys(query: "page_size=30")),
        ]
        for (agent, keys) in pages { try await store(client, keys, agent: agent, body: Array(agent.utf8)) }

        func present() async throws -> [Bool] {
            var found: [Bool] = []
            for (agent, keys) in pages {
                let page = try await client.evaluate(
                    SharedScripts.readPage,
                    keys: [keys.page, Keys.generations],
                    arguments: [.string(agent)],
                    on: loop
                ).get()
                found.append(!page.isNull)
            }
            return found
        }
        #expect(try await present() == [true, true, true])
        try await invalidate(client, agent: "a")
        #expect(try await present() == [false, true, false])
        try await invalidate(client, agent: "")
        #expect(try await present() == [false, false, false])
        await client.shutdown()
        await server.stop()
    }

    /// Any other answer is kept briefly for the followers; a leader whose lock has passed to another does
    /// not release that one's lock.
    @Test func aNon200IsKeptForTheFollowersAndAnotherLeadersLockIsLeftAlone() async throws {
        let server = try await RedisServer.start()
        let client = makeClient(server)
        let keys = Keys(query: "agent_id=z")
        let lead = try await enter(client, keys, agent: "z", token: "r1")
        // The lock expired and another replica leads now.
        _ = try await client.send(["SET", keys.lock, "r2"])
        let stored = try await finish(
            client,
            keys,
            agent: "z",
            token: "r1",
            generations: (lead[1], lead[2]),
            status: 503,
            body: Array("{\"detail\":\"busy\"}".utf8)
        )
        #expect(stored == 0)
        #expect(try await client.send(["GET", keys.lock]) == .bulkString(ByteBuffer(string: "r2")))
        #expect(
            try await client.send(["GET", keys.result])
                == .bulkString(ByteBuffer(string: "503 application/json\n{\"detail\":\"busy\"}"))
        )
        #expect(try await client.send(["EXISTS", keys.page]) == .integer(0))
        await client.shutdown()
        await server.stop()
    }
}
