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

@Suite("SingleFlight: one leader per key, every waiter answered at once")
struct SingleFlightTests {
    @Test(arguments: [1, 16])
    func theFirstJoinLeadsAndLaterJoinsFollow(shardCount: Int) {
        let loop = EmbeddedEventLoop()
        let flight = SingleFlight<String, String>(shardCount: shardCount)
        let waiters = (0..<5).map { _ in Waiter(on: loop) }

        #expect(flight.join("k", promise: waiters[0].promise))
        for waiter in waiters.dropFirst() { #expect(!flight.join("k", promise: waiter.promise)) }
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
        let flight = SingleFlight<String, String>()
        let waiters = (0..<3).map { _ in Waiter(on: loop) }
        for waiter in waiters { _ = flight.join("k", promise: waiter.promise) }

        flight.complete("k", with: .failure(Boom(code: 503)))
        #expect(waiters.map(\.answered) == Array(repeating: .error(Boom(code: 503)), count: 3))
        #expect(flight.flightCount == 0)
    }

    @Test func afterCompletionTheNextJoinLeadsAgain() {
        let loop = EmbeddedEventLoop()
        let flight = SingleFlight<String, String>()
        let first = Waiter(on: loop)
        #expect(flight.join("k", promise: first.promise))
        flight.complete("k", with: .failure(Boom(code: 1)))

        let second = Waiter(on: loop)
        let third = Waiter(on: loop)
        #expect(flight.join("k", promise: second.promise), "a failed flight does not block the next try")
        #expect(!flight.join("k", promise: third.promise))
        #expect(flight.waiterCount == 2)

        flight.complete("k", with: .success("retried"))
        #expect(first.answered == .error(Boom(code: 1)))
        #expect(second.answered == .value("retried"))
        #expect(third.answered == .value("retried"))
    }

    @Test(arguments: [1, 16])
    func differentKeysAreIndependent(shardCount: Int) {
        let loop = EmbeddedEventLoop()
        let flight = SingleFlight<String, String>(shardCount: shardCount)
        let a = (0..<2).map { _ in Waiter(on: loop) }
        let b = (0..<3).map { _ in Waiter(on: loop) }

        #expect(flight.join("a", promise: a[0].promise))
        #expect(flight.join("b", promise: b[0].promise), "another key's flight does not make this one follow")
        #expect(!flight.join("a", promise: a[1].promise))
        #expect(!flight.join("b", promise: b[1].promise))
        #expect(!flight.join("b", promise: b[2].promise))
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
        let flight = SingleFlight<String, String>()
        let waiter = Waiter(on: loop)
        #expect(flight.join("a", promise: waiter.promise))

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
        let flight = SingleFlight<Int, String>()
        let leader = Waiter(on: first)
        let follower = Waiter(on: second)
        #expect(flight.join(7, promise: leader.promise))
        #expect(!flight.join(7, promise: follower.promise))

        flight.complete(7, with: .success("seven"))
        #expect(leader.answered == .value("seven"))
        #expect(follower.answered == .value("seven"))
        #expect(follower.promise.futureResult.eventLoop === second)
    }

    @Test func manyJoinersShareOneLeader() {
        let loop = EmbeddedEventLoop()
        let flight = SingleFlight<String, String>()
        let waiters = (0..<100).map { _ in Waiter(on: loop) }
        let leaders = waiters.filter { flight.join("hot", promise: $0.promise) }
        #expect(leaders.count == 1)
        #expect(leaders.first === waiters.first)
        #expect(flight.waiterCount == 100)

        flight.complete("hot", with: .success("once"))
        #expect(waiters.allSatisfy { $0.answered == .value("once") })
    }
}
