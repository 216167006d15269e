import GatewayCore
import GatewayTesting
import Testing

@Suite("TeamRegistry: the CLIENTS_FILE")
struct TeamRegistryTests {
    private let hashA = SHA256.hexDigest("token-a".utf8)
    private let hashB = SHA256.hexDigest("token-b".utf8)

    @Test func readsTeamsTheirHashesAndSettings() throws {
        let registry = try TeamRegistry(
            parsing: """
                # teams
                team-a  \(hashA)  upstream_per_minute=120
                team.b\t\(hashB.uppercased())   # trailing comment

                """,
            source: "clients"
        )

        #expect(registry.teams.map(\.name) == ["team-a", "team.b"])
        #expect(registry.team(forToken: "token-a", now: 0) == .init(name: "team-a", upstreamPerMinute: 120))
        #expect(registry.team(forToken: "token-b", now: 0)?.upstreamPerMinute == nil)
        #expect(registry.team(forToken: "token-c", now: 0) == nil)
        #expect(registry.team(forToken: "", now: 0) == nil)
        #expect(registry.team(forToken: hashA, now: 0) == nil)
    }

    @Test(
        arguments: [
            ("team", "line 1: wants a team name"),
            ("bad/name 0000000000000000000000000000000000000000000000000000000000000000", "team name"),
            ("t 1234", "64 hexadecimal digits"),
            ("t zz00000000000000000000000000000000000000000000000000000000000000", "64 hexadecimal digits"),
            ("t 0000000000000000000000000000000000000000000000000000000000000000 burst=2", "unknown setting"),
            (
                "t 0000000000000000000000000000000000000000000000000000000000000000 upstream_per_minute=-1",
                "from 0 to 1000000"
            ),
            (
                "t 0000000000000000000000000000000000000000000000000000000000000000 upstream_per_minute=5\n"
                    + "t 1111111111111111111111111111111111111111111111111111111111111111 upstream_per_minute=6",
                "line 2: team t has upstream_per_minute=5 on line 1 and 6 here"
            ),
            (
                "t 0000000000000000000000000000000000000000000000000000000000000000\n"
                    + "u 0000000000000000000000000000000000000000000000000000000000000000", "a token appears twice"
            ),
            (
                "t 0000000000000000000000000000000000000000000000000000000000000000 expires=2027-02-30T00:00:00Z",
                "expires"
            ),
            ("t 0000000000000000000000000000000000000000000000000000000000000000 expires=2027-01-01", "YYYY-MM-DD"),
            (
                "t 0000000000000000000000000000000000000000000000000000000000000000 upstream_per_minute=1000001",
                "from 0 to 1000000, got 1000001"
            ),
            (
                "t 0000000000000000000000000000000000000000000000000000000000000000 upstream_per_minute=9223372036854775807",
                "from 0 to 1000000"
            ),
            ("t 0000000000000000000000000000000000000000000000000000000000000000 expires=2027-01-01T24:00:00Z", "UTC"),
        ]
    )
    func refusesLinesItCannotUse(text: String, expected: String) {
        do {
            _ = try TeamRegistry(parsing: text, source: "clients.txt")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.key == "CLIENTS_FILE")
            #expect(error.description.contains("clients.txt"))
            #expect(error.description.contains(expected), "\(error)")
        }
    }

    /// Rotation: a team's second token works beside its first, until the first's expiry.
    @Test func aTeamMayHaveSeveralTokensAndATokenMayExpire() throws {
        let expires = try #require(TeamRegistry.moment("2027-01-31T12:00:00Z"))
        #expect(expires == 1_801_396_800)
        let registry = try TeamRegistry(
            parsing: """
                team-a  \(hashA)  expires=2027-01-31T12:00:00Z
                team-b  \(SHA256.hexDigest("token-c".utf8))
                team-a  \(hashB)  upstream_per_minute=30
                """,
            source: "clients"
        )
        #expect(
            registry.teams == [
                .init(name: "team-a", upstreamPerMinute: 30), .init(name: "team-b", upstreamPerMinute: nil),
            ]
        )
        #expect(registry.tokenCount == 3)
        #expect(registry.team(forToken: "token-a", now: expires - 1)?.name == "team-a")
        #expect(registry.team(forToken: "token-a", now: expires) == nil, "refused from its expiry on")
        #expect(registry.team(forToken: "token-b", now: expires + 86_400)?.upstreamPerMinute == 30)
        #expect(registry.team(forToken: "token-c", now: expires)?.name == "team-b")
    }

    @Test(arguments: [
        ("1970-01-01T00:00:00Z", 0), ("2000-02-29T23:59:59Z", 951_868_799), ("2026-12-06T16:00:00Z", 1_796_572_800),
    ])
    func momentsAreSecondsSince1970(text: String, seconds: Int) {
        #expect(TeamRegistry.moment(text) == seconds)
    }

    @Test func theLineForATokenIsItsDigest() {
        #expect(TeamRegistry.line(team: "ops", token: "token-a") == "ops \(hashA)")
    }
}

@Suite("TeamBudgets: a token bucket per team")
struct TeamBudgetsTests {
    @Test func allowsAMinutesWorthThenRefillsAtTheRate() {
        let clock = ManualClock()
        let budgets = TeamBudgets(clock: clock)

        for _ in 0..<60 { #expect(budgets.spend(team: "a", perMinute: 60) == .allowed) }
        #expect(budgets.spend(team: "a", perMinute: 60) == .denied(retryAfterSeconds: 1))
        #expect(budgets.spend(team: "b", perMinute: 60) == .allowed)
        clock.advance(seconds: 1)
        #expect(budgets.spend(team: "a", perMinute: 60) == .allowed)
        #expect(budgets.spend(team: "a", perMinute: 60) == .denied(retryAfterSeconds: 1))
    }

    @Test func aSlowRateSaysWhenTheNextTokenComes() {
        let clock = ManualClock()
        let budgets = TeamBudgets(clock: clock)
        #expect(budgets.spend(team: "a", perMinute: 2) == .allowed)
        #expect(budgets.spend(team: "a", perMinute: 2) == .allowed)
        #expect(budgets.spend(team: "a", perMinute: 2) == .denied(retryAfterSeconds: 30))
        clock.advance(seconds: 10)
        #expect(budgets.spend(team: "a", perMinute: 2) == .denied(retryAfterSeconds: 20))
    }

    @Test func noRateIsUnlimitedAndZeroIsNothing() {
        let budgets = TeamBudgets(clock: ManualClock())
        for _ in 0..<1000 { #expect(budgets.spend(team: "a", perMinute: nil) == .allowed) }
        #expect(budgets.spend(team: "z", perMinute: 0) == .denied(retryAfterSeconds: 60))
    }
}
