import GatewayTesting
import Testing

@testable import GatewayCore

/// What a team is told of its budget, what it spent and was refused, and the shared bucket's level taken.
@Suite("TeamBudgets: state, counts, the shared level")
struct TeamBudgetStateTests {
    @Test func theStateSaysWhatIsLeftAndWhenOneMoreComesBack() {
        let clock = ManualClock()
        let budgets = TeamBudgets(clock: clock)
        #expect(budgets.state(team: "red", perMinute: 6) == BudgetState(perMinute: 6, remaining: 6, secondsToNext: 0))
        for _ in 0..<6 { #expect(budgets.spend(team: "red", perMinute: 6) == .allowed) }
        #expect(budgets.state(team: "red", perMinute: 6) == BudgetState(perMinute: 6, remaining: 0, secondsToNext: 10))
        clock.advance(seconds: 4)
        #expect(budgets.state(team: "red", perMinute: 6) == BudgetState(perMinute: 6, remaining: 0, secondsToNext: 6))
        clock.advance(seconds: 13)
        // 1.7 tokens: one whole, the next in 3 s.
        #expect(budgets.state(team: "red", perMinute: 6) == BudgetState(perMinute: 6, remaining: 1, secondsToNext: 3))
        #expect(budgets.state(team: "red", perMinute: 6).remaining == 1, "reading spends nothing")
        #expect(budgets.state(team: "blue", perMinute: 6).remaining == 6, "teams apart")
    }

    @Test func spendsAndRefusalsAreCountedPerTeamAndMoveTheVersion() {
        let clock = ManualClock()
        let budgets = TeamBudgets(clock: clock)
        let before = budgets.version
        _ = budgets.spend(team: "red", perMinute: 1)
        _ = budgets.spend(team: "red", perMinute: 1)
        _ = budgets.spend(team: "open", perMinute: nil)
        #expect(budgets.counts["red"] == BudgetCounts(spent: 1, refused: 1))
        #expect(budgets.counts["open"] == BudgetCounts(spent: 1, refused: 0))
        #expect(budgets.version > before)
        let read = budgets.version
        _ = budgets.state(team: "red", perMinute: 1)
        #expect(budgets.version == read, "a read moves nothing")
    }

    /// A spend the shared bucket decided is counted, and the local bucket takes the shared level: the team
    /// is told what all replicas together left it, and that level decides here if Redis goes away.
    @Test func aSharedSpendSetsTheLocalBucketToTheSharedLevel() {
        let clock = ManualClock()
        let budgets = TeamBudgets(clock: clock)
        let before = budgets.version
        budgets.settle(team: "red", perMinute: 10, shared: SharedBudget(decision: .allowed, tokensLeft: 2.5))
        #expect(budgets.version > before)
        #expect(budgets.state(team: "red", perMinute: 10).remaining == 2)
        #expect(budgets.spend(team: "red", perMinute: 10) == .allowed)
        #expect(budgets.spend(team: "red", perMinute: 10) == .allowed)
        #expect(budgets.spend(team: "red", perMinute: 10) == .denied(retryAfterSeconds: 3))
        budgets.settle(
            team: "red",
            perMinute: 10,
            shared: SharedBudget(decision: .denied(retryAfterSeconds: 4), tokensLeft: -1)
        )
        #expect(budgets.state(team: "red", perMinute: 10).remaining == 0)
        #expect(budgets.counts["red"] == BudgetCounts(spent: 3, refused: 2))
    }
}
