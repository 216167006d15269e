import GatewayTesting
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import GatewayCore

/// How one acquire ended.
private enum Ending: Equatable, Sendable {
    case granted(Int)
    case rejected(Int, UpstreamGovernor.Rejection)
    case unexpected(Int, String)
}

/// Records acquire endings in the order their futures complete.
private final class Endings: Sendable {
    private let endings = Locked<[Ending]>([])

    var all: [Ending] { endings.withLock { $0 } }

    func watch(_ future: EventLoopFuture<Void>, as id: Int) {
        future.whenComplete { result in
            let ending: Ending
            switch result {
            case .success: ending = .granted(id)
            case .failure(let rejection as UpstreamGovernor.Rejection): ending = .rejected(id, rejection)
            case .failure(let error): ending = .unexpected(id, "\(error)")
            }
            self.endings.withLock { $0.append(ending) }
        }
    }
}

/// A governor over an embedded loop and a manual clock, with helpers to acquire and record.
private struct Harness {
    let loop = EmbeddedEventLoop()
    let clock = ManualClock()
    let endings = Endings()
    let governor: UpstreamGovernor

    init(maxConcurrency: Int, maxQueue: Int, queueTimeout: TimeAmount = .seconds(5), backoffMaxSeconds: Int = 30) {
        governor = UpstreamGovernor(
            configuration: UpstreamGovernor.Configuration(
                maxConcurrency: maxConcurrency,
                maxQueue: maxQueue,
                queueTimeout: queueTimeout,
                backoffMaxSeconds: backoffMaxSeconds
            ),
            clock: clock
        )
    }

    func acquire(_ ids: Int...) {
        for id in ids { endings.watch(governor.acquire(on: loop), as: id) }
    }

    /// Checks that nothing is left waiting (a pending promise would be leaked) and stops the loop.
    func finish(sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(governor.snapshot.inFlight == 0, sourceLocation: sourceLocation)
        #expect(governor.snapshot.queued == 0, sourceLocation: sourceLocation)
        try loop.syncShutdownGracefully()
    }
}

private typealias Snapshot = UpstreamGovernor.Snapshot

@Suite("UpstreamGovernor: slots, queue and timeouts over an event loop")
struct UpstreamGovernorTests {
    @Test func acquireUnderTheCapSucceedsAtOnce() throws {
        let harness = Harness(maxConcurrency: 2, maxQueue: 4)
        harness.acquire(0, 1)
        #expect(harness.endings.all == [.granted(0), .granted(1)])
        #expect(harness.governor.snapshot == Snapshot(inFlight: 2, queued: 0, limit: 2, backoffSecondsLeft: 0))

        harness.governor.release(.success)
        harness.governor.release(.success)
        #expect(harness.governor.snapshot.inFlight == 0)
        try harness.finish()
    }

    /// A 429 on a slot that was another governor's (a shared lease Redis could not be told of) backs this
    /// one off too, and lowers its limit, without freeing a slot it never gave.
    @Test func aLearned429BacksOffWithoutGivingBackASlot() throws {
        let harness = Harness(maxConcurrency: 3, maxQueue: 4)
        harness.acquire(0)
        harness.governor.learn(.rateLimited(retryAfterSeconds: 7, maximumConcurrent: 2))
        #expect(harness.governor.snapshot == Snapshot(inFlight: 1, queued: 0, limit: 2, backoffSecondsLeft: 7))
        harness.acquire(1)
        #expect(harness.endings.all == [.granted(0), .rejected(1, .backingOff(secondsLeft: 7))])
        harness.governor.release(.other)
        try harness.finish()
    }

    @Test func queuedAcquiresSucceedInArrivalOrderAsSlotsComeFree() throws {
        let harness = Harness(maxConcurrency: 1, maxQueue: 4)
        harness.acquire(0, 1, 2, 3)
        #expect(harness.endings.all == [.granted(0)])
        #expect(harness.governor.snapshot == Snapshot(inFlight: 1, queued: 3, limit: 1, backoffSecondsLeft: 0))

        harness.governor.release(.success)
        #expect(harness.endings.all == [.granted(0), .granted(1)])
        harness.governor.release(.other)
        #expect(harness.endings.all == [.granted(0), .granted(1), .granted(2)])
        harness.governor.release(.success)
        #expect(harness.endings.all == [.granted(0), .granted(1), .granted(2), .granted(3)])
        #expect(harness.governor.snapshot == Snapshot(inFlight: 1, queued: 0, limit: 1, backoffSecondsLeft: 0))

        // The granted waiters' timeouts were cancelled: nothing fails later.
        harness.loop.advanceTime(by: .seconds(60))
        #expect(harness.endings.all.count == 4)
        harness.governor.release(.success)
        try harness.finish()
    }

    @Test func aWaiterThatGetsNoSlotInTimeFailsWithQueueTimeout() throws {
        let harness = Harness(maxConcurrency: 1, maxQueue: 4, queueTimeout: .seconds(5))
        harness.acquire(0, 1)
        harness.loop.advanceTime(by: .seconds(5) - .nanoseconds(1))
        #expect(harness.endings.all == [.granted(0)])
        #expect(harness.governor.snapshot.queued == 1)

        harness.loop.advanceTime(by: .nanoseconds(1))
        #expect(harness.endings.all == [.granted(0), .rejected(1, .queueTimeout)])
        #expect(harness.governor.snapshot.queued == 0)

        // The slot that comes free later is not given to the waiter that gave up.
        harness.governor.release(.success)
        #expect(harness.endings.all.count == 2)
        #expect(harness.governor.snapshot.inFlight == 0)
        harness.acquire(2)
        #expect(harness.endings.all.last == .granted(2))
        harness.governor.release(.success)
        try harness.finish()
    }

    @Test func eachWaiterIsTimedFromWhenItQueued() throws {
        let harness = Harness(maxConcurrency: 1, maxQueue: 4, queueTimeout: .seconds(5))
        harness.acquire(0, 1)
        harness.loop.advanceTime(by: .seconds(2))
        harness.acquire(2)
        harness.loop.advanceTime(by: .seconds(3))
        #expect(harness.endings.all == [.granted(0), .rejected(1, .queueTimeout)])
        harness.loop.advanceTime(by: .seconds(2))
        #expect(harness.endings.all == [.granted(0), .rejected(1, .queueTimeout), .rejected(2, .queueTimeout)])
        harness.governor.release(.success)
        try harness.finish()
    }

    @Test func aFullQueueRefusesAtOnce() throws {
        let harness = Harness(maxConcurrency: 1, maxQueue: 1)
        harness.acquire(0, 1, 2)
        #expect(harness.endings.all == [.granted(0), .rejected(2, .queueFull)])
        #expect(harness.governor.snapshot == Snapshot(inFlight: 1, queued: 1, limit: 1, backoffSecondsLeft: 0))

        harness.governor.release(.success)
        #expect(harness.endings.all == [.granted(0), .rejected(2, .queueFull), .granted(1)])
        harness.governor.release(.success)
        try harness.finish()
    }

    @Test func aBadConfigurationStillAllowsOneRequest() throws {
        let harness = Harness(maxConcurrency: 0, maxQueue: -1)
        harness.acquire(0, 1)
        #expect(harness.endings.all == [.granted(0), .rejected(1, .queueFull)])
        #expect(harness.governor.snapshot.limit == 1)
        harness.governor.release(.success)
        try harness.finish()
    }
}

@Suite("UpstreamGovernor: back-off and snapshot with a manual clock")
struct UpstreamGovernorBackoffTests {
    @Test func retryAfterRefusesWithTheSecondsLeftRoundedUpThenLetsTrafficThrough() throws {
        let harness = Harness(maxConcurrency: 2, maxQueue: 4)
        harness.acquire(0, 1, 2)
        #expect(harness.endings.all == [.granted(0), .granted(1)])

        harness.governor.release(.rateLimited(retryAfterSeconds: 2, maximumConcurrent: nil))
        #expect(harness.endings.all == [.granted(0), .granted(1), .rejected(2, .backingOff(secondsLeft: 2))])
        #expect(harness.governor.snapshot == Snapshot(inFlight: 1, queued: 0, limit: 2, backoffSecondsLeft: 2))

        harness.acquire(3)
        #expect(harness.endings.all.last == .rejected(3, .backingOff(secondsLeft: 2)))
        harness.clock.advance(seconds: 0.5)
        harness.acquire(4)
        #expect(harness.endings.all.last == .rejected(4, .backingOff(secondsLeft: 2)))
        harness.clock.advance(seconds: 1)
        harness.acquire(5)
        #expect(harness.endings.all.last == .rejected(5, .backingOff(secondsLeft: 1)))
        #expect(harness.governor.snapshot.backoffSecondsLeft == 1)

        harness.clock.advance(seconds: 0.5)
        #expect(harness.governor.snapshot.backoffSecondsLeft == 0)
        harness.acquire(6)
        #expect(harness.endings.all.last == .granted(6))
        #expect(harness.governor.snapshot == Snapshot(inFlight: 2, queued: 0, limit: 2, backoffSecondsLeft: 0))

        harness.governor.release(.success)
        harness.governor.release(.success)
        try harness.finish()
    }

    @Test func withoutRetryAfterTheBackOffDoublesUntilASuccess() throws {
        let harness = Harness(maxConcurrency: 1, maxQueue: 4, backoffMaxSeconds: 30)
        var seen: [Int] = []
        for id in 0..<3 {
            harness.acquire(id)
            #expect(harness.endings.all.last == .granted(id))
            harness.governor.release(.rateLimited(retryAfterSeconds: nil, maximumConcurrent: nil))
            let secondsLeft = harness.governor.snapshot.backoffSecondsLeft
            seen.append(secondsLeft)
            harness.clock.advance(seconds: Double(secondsLeft))
        }
        #expect(seen == [1, 2, 4])

        harness.acquire(10)
        harness.governor.release(.success)
        harness.acquire(11)
        harness.governor.release(.rateLimited(retryAfterSeconds: nil, maximumConcurrent: nil))
        #expect(harness.governor.snapshot.backoffSecondsLeft == 1)
        harness.clock.advance(seconds: 1)
        try harness.finish()
    }

    @Test func snapshotFollowsSlotsQueueLimitAndBackOff() throws {
        let harness = Harness(maxConcurrency: 3, maxQueue: 5)
        #expect(harness.governor.snapshot == Snapshot(inFlight: 0, queued: 0, limit: 3, backoffSecondsLeft: 0))

        harness.acquire(0, 1, 2, 3, 4)
        #expect(harness.governor.snapshot == Snapshot(inFlight: 3, queued: 2, limit: 3, backoffSecondsLeft: 0))

        harness.governor.release(.rateLimited(retryAfterSeconds: 10, maximumConcurrent: 2))
        #expect(harness.governor.snapshot == Snapshot(inFlight: 2, queued: 0, limit: 2, backoffSecondsLeft: 10))
        #expect(
            harness.endings.all.suffix(2) == [
                .rejected(3, .backingOff(secondsLeft: 10)), .rejected(4, .backingOff(secondsLeft: 10)),
            ]
        )

        harness.clock.advance(seconds: 3.5)
        #expect(harness.governor.snapshot.backoffSecondsLeft == 7)
        harness.clock.advance(seconds: 6.5)
        #expect(harness.governor.snapshot == Snapshot(inFlight: 2, queued: 0, limit: 2, backoffSecondsLeft: 0))

        // The learned limit holds after the back-off: a third request waits.
        harness.acquire(5)
        #expect(harness.governor.snapshot == Snapshot(inFlight: 2, queued: 1, limit: 2, backoffSecondsLeft: 0))
        harness.governor.release(.success)
        #expect(harness.endings.all.last == .granted(5))
        harness.governor.release(.success)
        harness.governor.release(.success)
        #expect(harness.governor.snapshot == Snapshot(inFlight: 0, queued: 0, limit: 2, backoffSecondsLeft: 0))
        try harness.finish()
    }
}
