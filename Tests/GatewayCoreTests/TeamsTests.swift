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
        #expect(registry.team(forToken: "token-a") == .init(name: "team-a", upstreamPerMinute: 120))
        #expect(registry.team(forToken: "token-b")?.upstreamPerMinute == nil)
        #expect(registry.team(forToken: "token-c") == nil)
        #expect(registry.team(forToken: "") == nil)
        #expect(registry.team(forToken: hashA) == nil)
    }

    @Test(
        arguments: [
            ("team", "line 1: wants a team name"),
            ("bad/name 0000000000000000000000000000000000000000000000000000000000000000", "team name"),
            ("t 1234", "64 hexadecimal digits"),
            ("t zz00000000000000000000000000000000000000000000000000000000000000", "64 hexadecimal digits"),
            ("t 0000000000000000000000000000000000000000000000000000000000000000 burst=2", "unknown setting"),
            ("t 0000000000000000000000000000000000000000000000000000000000000000 upstream_per_minute=-1", "unknown"),
            (
                "t 0000000000000000000000000000000000000000000000000000000000000000\n"
                    + "t 1111111111111111111111111111111111111111111111111111111111111111",
                "line 2: team t appears twice"
            ),
            (
                "t 0000000000000000000000000000000000000000000000000000000000000000\n"
                    + "u 0000000000000000000000000000000000000000000000000000000000000000", "same token"
            ),
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
