import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import GatewayCore

private struct Boom: Error, Equatable {
    var code: Int
}

/// What a waiter was given, in comparable form; `nil` while it still waits.
private enum Answer: Equatable, Sendable {
    case value(String)
    case error(Boom)
    case unexpected(String)
}

/// One waiter's promise and what it has been answered so far.
private final class Waiter: Sendable {
    let promise: EventLoopPromise<String>
    private let answer = Locked<Answer?>(nil)

    init(on loop: any EventLoop) {
        promise = loop.makePromise(of: String.self)
        promise.futureResult.whenComplete { result in
            let given: Answer
            switch result {
            case .success(let value): given = .value(value)
            case .failure(let error as Boom): given = .error(error)
            case .failure(let error): given = .unexpected("\(error)")
            }
            self.answer.withLock { $0 = given }
        }
    }

    var answered: Answer? { answer.withLock { $0 } }
}

/// Enters `key` for `waiter` (allowed by its budget, no page found meanwhile) and passes the flight's result on
/// to the waiter's promise; `true` when the waiter leads.
private func join<Key>(_ flight: FlightTable<Key, String>, _ key: Key, _ waiter: Waiter) -> Bool {
    switch flight.enter(
        key,
        waitingOn: waiter.promise.futureResult.eventLoop,
        recheck: { nil as Int? },
        spend: { .allowed }
    ) {
    case .lead(let future?):
        future.cascade(to: waiter.promise)
        return true
    case .join(let future?):
        future.cascade(to: waiter.promise)
        return false
    case .hit, .refuse, .lead(nil), .join(nil):
        Issue.record("unexpected entry")
        waiter.promise.fail(Boom(code: -1))
        return false
    }
}

@Suite("FlightTable: one leader per key, every waiter answered at once")
struct FlightTableTests {
    @Test(arguments: [1, 16])
    func theFirstJoinLeadsAndLaterJoinsFollow(shardCount: Int) {
        let loop = EmbeddedEventLoop()
        let flight = FlightTable<String, String>(shardCount: shardCount)
        let waiters = (0..<5).map { _ in Waiter(on: loop) }

        #expect(join(flight, "k", waiters[0]))
        for waiter in waiters.dropFirst() { #expect(!join(flight, "k", waiter)) }
        #expect(flight.flightCount == 1)
        #expect(flight.waiterCount == 5)
        #expect(waiters.allSatisfy { $0.answered == nil })

        flight.complete("k", with: .success("page"))
        #expect(waiters.map(\.answered) == Array(repeating: .value("page"), count: 5))
        #expect(flight.flightCount == 0)
        #expect(flight.waiterCount == 0)
    }

    @Test func aFailureReachesEveryWaiterAsTheSameError() {
        let loop = EmbeddedEventLoop()
        let flight = FlightTable<String, String>()
        let waiters = (0..<3).map { _ in Waiter(on: loop) }
        for waiter in waiters { _ = join(flight, "k", waiter) }

        flight.complete("k", with: .failure(Boom(code: 503)))
        #expect(waiters.map(\.answered) == Array(repeating: .error(Boom(code: 503)), count: 3))
        #expect(flight.flightCount == 0)
    }

    @Test func afterCompletionTheNextJoinLeadsAgain() {
        let loop = EmbeddedEventLoop()
        let flight = FlightTable<String, String>()
        let first = Waiter(on: loop)
        #expect(join(flight, "k", first))
        flight.complete("k", with: .failure(Boom(code: 1)))

        let second = Waiter(on: loop)
        let third = Waiter(on: loop)
        #expect(join(flight, "k", second), "a failed flight does not block the next try")
        #expect(!join(flight, "k", third))
        #expect(flight.waiterCount == 2)

        flight.complete("k", with: .success("retried"))
        #expect(first.answered == .error(Boom(code: 1)))
        #expect(second.answered == .value("retried"))
        #expect(third.answered == .value("retried"))
    }

    @Test(arguments: [1, 16])
    func differentKeysAreIndependent(shardCount: Int) {
        let loop = EmbeddedEventLoop()
        let flight = FlightTable<String, String>(shardCount: shardCount)
        let a = (0..<2).map { _ in Waiter(on: loop) }
        let b = (0..<3).map { _ in Waiter(on: loop) }

        #expect(join(flight, "a", a[0]))
        #expect(join(flight, "b", b[0]), "another key's flight does not make this one follow")
        #expect(!join(flight, "a", a[1]))
        #expect(!join(flight, "b", b[1]))
        #expect(!join(flight, "b", b[2]))
        #expect(flight.flightCount == 2)
        #expect(flight.waiterCount == 5)

        flight.complete("b", with: .success("B"))
        #expect(b.map(\.answered) == [.value("B"), .value("B"), .value("B")])
        #expect(a.map(\.answered) == [nil, nil])
        #expect(flight.flightCount == 1)
        #expect(flight.waiterCount == 2)

        flight.complete("a", with: .success("A"))
        #expect(a.map(\.answered) == [.value("A"), .value("A")])
        #expect(flight.flightCount == 0)
        #expect(flight.waiterCount == 0)
    }

    @Test func completingAKeyWithNoFlightChangesNothing() {
        let loop = EmbeddedEventLoop()
        let flight = FlightTable<String, String>()
        let waiter = Waiter(on: loop)
        #expect(join(flight, "a", waiter))

        flight.complete("other", with: .success("x"))
        #expect(waiter.answered == nil)
        #expect(flight.flightCount == 1)
        #expect(flight.waiterCount == 1)

        flight.complete("a", with: .success("A"))
        #expect(waiter.answered == .value("A"))
    }

    @Test func waitersOnDifferentLoopsAreEachAnsweredOnTheirOwn() {
        let first = EmbeddedEventLoop()
        let second = EmbeddedEventLoop()
        let flight = FlightTable<Int, String>()
        let leader = Waiter(on: first)
        let follower = Waiter(on: second)
        #expect(join(flight, 7, leader))
        #expect(!join(flight, 7, follower))

        flight.complete(7, with: .success("seven"))
        #expect(leader.answered == .value("seven"))
        #expect(follower.answered == .value("seven"))
        #expect(follower.promise.futureResult.eventLoop === second)
    }

    @Test func manyJoinersShareOneLeader() {
        let loop = EmbeddedEventLoop()
        let flight = FlightTable<String, String>()
        let waiters = (0..<100).map { _ in Waiter(on: loop) }
        let leaders = waiters.filter { join(flight, "hot", $0) }
        #expect(leaders.count == 1)
        #expect(leaders.first === waiters.first)
        #expect(flight.waiterCount == 100)

        flight.complete("hot", with: .success("once"))
        #expect(waiters.allSatisfy { $0.answered == .value("once") })
    }
}

@Suite("FlightTable: hit, join, lead or refuse, decided in one step")
struct FlightTableEntryTests {
    /// Counts the budget's calls, allowing or refusing as told.
    final class Budget: Sendable {
        private let calls = Locked(0)
        let decision: BudgetDecision

        init(_ decision: BudgetDecision) { self.decision = decision }

        func spend() -> BudgetDecision {
            calls.withLock { $0 += 1 }
            return decision
        }

        var spent: Int { calls.withLock { $0 } }
    }

    @Test func joiningAFlightUnderWayIsFreeAndNeverRechecks() throws {
        let loop = EmbeddedEventLoop()
        let flight = FlightTable<String, String>()
        let budget = Budget(.allowed)
        guard case .lead(let led?) = flight.enter("k", waitingOn: loop, recheck: { nil as Int? }, spend: budget.spend)
        else { throw Boom(code: 1) }
        #expect(budget.spent == 1)

        let refusing = Budget(.denied(retryAfterSeconds: 9))
        var rechecked = false
        let entry = flight.enter(
            "k",
            waitingOn: loop,
            recheck: { () -> Int? in
                rechecked = true
                return 1
            },
            spend: refusing.spend
        )
        guard case .join(let joined?) = entry else { throw Boom(code: 2) }
        #expect(refusing.spent == 0, "a team out of budget still joins a flight under way")
        #expect(!rechecked)

        flight.complete("k", with: .success("page"))
        #expect(try led.wait() == "page")
        #expect(try joined.wait() == "page")
    }

    @Test func aPageFoundOnTheRecheckIsAHitAndSpendsNothing() {
        let loop = EmbeddedEventLoop()
        let flight = FlightTable<String, String>()
        let budget = Budget(.allowed)
        let entry = flight.enter("k", waitingOn: loop, recheck: { "stored meanwhile" }, spend: budget.spend)
        guard case .hit(let found) = entry else {
            Issue.record("expected a hit, got \(entry)")
            return
        }
        #expect(found == "stored meanwhile")
        #expect(budget.spent == 0)
        #expect(flight.flightCount == 0)
    }

    @Test func aSpentBudgetRefusesAndLeavesNoFlight() {
        let loop = EmbeddedEventLoop()
        let flight = FlightTable<String, String>()
        let entry = flight.enter(
            "k",
            waitingOn: loop,
            recheck: { nil as Int? },
            spend: Budget(.denied(retryAfterSeconds: 7)).spend
        )
        guard case .refuse(let retryAfter) = entry else {
            Issue.record("expected a refusal, got \(entry)")
            return
        }
        #expect(retryAfter == 7)
        #expect(flight.flightCount == 0)
        #expect(flight.waiterCount == 0)
    }

    @Test func aBackgroundRefreshLeadsWithoutWaitingAndIsJoinedByWaiters() throws {
        let loop = EmbeddedEventLoop()
        let flight = FlightTable<String, String>()
        guard case .lead(nil) = flight.enter("k", waitingOn: nil, recheck: { nil as Int? }, spend: { .allowed })
        else { throw Boom(code: 1) }
        #expect(flight.flightCount == 1)
        #expect(flight.waiterCount == 0, "nobody waits for a background refresh")

        let second = Budget(.allowed)
        guard case .join(nil) = flight.enter("k", waitingOn: nil, recheck: { nil as Int? }, spend: second.spend)
        else { throw Boom(code: 2) }
        #expect(second.spent == 0, "a second stale hit starts nothing and pays nothing")

        guard
            case .join(let waiting?) = flight.enter("k", waitingOn: loop, recheck: { nil as Int? }, spend: { .allowed })
        else { throw Boom(code: 3) }
        #expect(flight.waiterCount == 1)
        flight.complete("k", with: .success("refreshed"))
        #expect(try waiting.wait() == "refreshed")
        #expect(flight.flightCount == 0)
    }
}
