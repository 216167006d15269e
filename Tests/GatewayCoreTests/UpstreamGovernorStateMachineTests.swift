import Testing

@testable import GatewayCore

private typealias Machine = UpstreamGovernor.StateMachine
private typealias Wakeups = UpstreamGovernor.StateMachine.Wakeups

private let second: UInt64 = 1_000_000_000
/// Not zero, so a back-off computed from zero instead of `now` shows.
private let start: UInt64 = 5_000 * second

/// Holds a machine so that `#expect` can call its mutating methods: the macro captures values, not variables.
private final class Driver {
    private var machine: Machine

    init(_ machine: Machine) { self.machine = machine }

    var inFlight: Int { machine.inFlight }
    var queue: [Int] { machine.queue.ids }
    var limit: Int { machine.limit }
    var learnedLimit: Int? { machine.learnedLimit }
    var backoffUntil: UInt64 { machine.backoffUntil }

    func acquire(_ id: Int, now: UInt64) -> Machine.AcquireAction { machine.acquire(id, now: now) }
    func release(_ outcome: UpstreamGovernor.Outcome, now: UInt64) -> Wakeups { machine.release(outcome, now: now) }
    func cancel(_ id: Int) -> Bool { machine.cancel(id) }
}

private func makeMachine(maxConcurrency: Int = 2, maxQueue: Int = 4, backoffMaxSeconds: UInt64 = 30) -> Driver {
    Driver(
        Machine(
            settings: Machine.Settings(
                maxConcurrency: maxConcurrency,
                maxQueue: maxQueue,
                backoffMaxNanoseconds: backoffMaxSeconds * second
            )
        )
    )
}

private func rateLimited(retryAfter: Int? = nil, maximumConcurrent: Int? = nil) -> UpstreamGovernor.Outcome {
    .rateLimited(retryAfterSeconds: retryAfter, maximumConcurrent: maximumConcurrent)
}

@Suite("UpstreamGovernor.StateMachine: slots and the fair queue")
struct UpstreamGovernorStateMachineSlotTests {
    @Test func grantsUpToTheLimitThenQueuesInArrivalOrder() {
        let machine = makeMachine(maxConcurrency: 2, maxQueue: 4)
        #expect(machine.limit == 2)
        #expect(machine.acquire(0, now: start) == .granted)
        #expect(machine.acquire(1, now: start) == .granted)
        #expect(machine.acquire(2, now: start) == .queued)
        #expect(machine.acquire(3, now: start) == .queued)
        #expect(machine.acquire(4, now: start) == .queued)
        #expect(machine.inFlight == 2)
        #expect(machine.queue == [2, 3, 4])
    }

    @Test func refusesOnceTheQueueIsFull() {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 2)
        #expect(machine.acquire(0, now: start) == .granted)
        #expect(machine.acquire(1, now: start) == .queued)
        #expect(machine.acquire(2, now: start) == .queued)
        #expect(machine.acquire(3, now: start) == .rejectedQueueFull)
        #expect(machine.acquire(4, now: start) == .rejectedQueueFull)
        #expect(machine.queue == [1, 2])
        #expect(machine.inFlight == 1)

        // A slot coming free makes room in the queue again.
        #expect(machine.release(.success, now: start) == Wakeups(granted: [1]))
        #expect(machine.acquire(5, now: start) == .queued)
        #expect(machine.queue == [2, 5])
    }

    @Test func withNoQueueEverythingBeyondTheLimitIsRefused() {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 0)
        #expect(machine.acquire(0, now: start) == .granted)
        #expect(machine.acquire(1, now: start) == .rejectedQueueFull)
        #expect(machine.queue.isEmpty)
    }

    @Test func releaseGrantsTheOldestWaiterFirst() {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 4)
        #expect(machine.acquire(0, now: start) == .granted)
        for id in 1...3 { #expect(machine.acquire(id, now: start) == .queued) }

        #expect(machine.release(.success, now: start) == Wakeups(granted: [1]))
        #expect(machine.inFlight == 1)
        #expect(machine.queue == [2, 3])
        #expect(machine.release(.success, now: start) == Wakeups(granted: [2]))
        #expect(machine.release(.success, now: start) == Wakeups(granted: [3]))
        #expect(machine.queue.isEmpty)
        #expect(machine.inFlight == 1)

        #expect(machine.release(.success, now: start) == Wakeups())
        #expect(machine.inFlight == 0)
    }

    @Test func aNewcomerWaitsBehindTheQueue() {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 4)
        #expect(machine.acquire(0, now: start) == .granted)
        #expect(machine.acquire(1, now: start) == .queued)
        #expect(machine.release(.success, now: start) == Wakeups(granted: [1]))
        // The slot went to the waiter; the newcomer queues rather than overtaking it.
        #expect(machine.acquire(2, now: start) == .queued)
        #expect(machine.inFlight == 1)
    }

    @Test func cancelRemovesOnlyAQueuedWaiter() {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 4)
        #expect(machine.acquire(0, now: start) == .granted)
        for id in 1...3 { #expect(machine.acquire(id, now: start) == .queued) }

        #expect(machine.cancel(2))
        #expect(machine.queue == [1, 3])
        #expect(!machine.cancel(2), "already gone")
        #expect(!machine.cancel(0), "holds a slot, is not queued")
        #expect(!machine.cancel(99), "never seen")
        #expect(machine.queue == [1, 3])
        #expect(machine.inFlight == 1)

        #expect(machine.release(.success, now: start) == Wakeups(granted: [1]))
        #expect(machine.release(.success, now: start) == Wakeups(granted: [3]))
        #expect(machine.release(.success, now: start) == Wakeups())
    }

    @Test func otherOutcomesFreeTheSlotAndChangeNothingElse() {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 4)
        #expect(machine.acquire(0, now: start) == .granted)
        #expect(machine.acquire(1, now: start) == .queued)

        #expect(machine.release(.other, now: start) == Wakeups(granted: [1]))
        #expect(machine.backoffUntil == 0)
        #expect(machine.learnedLimit == nil)
        #expect(machine.limit == 1)
        #expect(machine.release(.other, now: start) == Wakeups())
        #expect(machine.inFlight == 0)
        #expect(machine.acquire(2, now: start) == .granted)
    }

    @Test func aReleaseWithoutASlotDoesNotGoNegative() {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 4)
        #expect(machine.release(.success, now: start) == Wakeups())
        #expect(machine.inFlight == 0)
        #expect(machine.acquire(0, now: start) == .granted)
        #expect(machine.acquire(1, now: start) == .queued)
    }
}

@Suite("UpstreamGovernor.StateMachine: back-off after a 429")
struct UpstreamGovernorStateMachineBackoffTests {
    @Test func retryAfterRefusesEveryAcquireAndEveryWaiterUntilItEnds() {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 4)
        #expect(machine.acquire(0, now: start) == .granted)
        #expect(machine.acquire(1, now: start) == .queued)
        #expect(machine.acquire(2, now: start) == .queued)

        let until = start + 2 * second
        #expect(
            machine.release(rateLimited(retryAfter: 2), now: start)
                == Wakeups(granted: [], rejected: [1, 2], backoffUntil: until)
        )
        #expect(machine.queue.isEmpty)
        #expect(machine.inFlight == 0)
        #expect(machine.backoffUntil == until)

        #expect(machine.acquire(3, now: start) == .rejectedBackoff(until: until))
        #expect(machine.acquire(4, now: start + second) == .rejectedBackoff(until: until))
        #expect(machine.acquire(5, now: until - 1) == .rejectedBackoff(until: until))
        #expect(machine.queue.isEmpty, "refused requests are not queued")
        #expect(machine.acquire(6, now: until) == .granted)
        #expect(machine.acquire(7, now: until) == .queued)
    }

    @Test func aSuccessDuringTheBackOffDoesNotEndIt() {
        let machine = makeMachine(maxConcurrency: 2, maxQueue: 4)
        #expect(machine.acquire(0, now: start) == .granted)
        #expect(machine.acquire(1, now: start) == .granted)
        let until = start + 2 * second
        #expect(machine.release(rateLimited(retryAfter: 2), now: start).backoffUntil == until)
        #expect(machine.release(.success, now: start + second) == Wakeups(backoffUntil: until))
        #expect(machine.acquire(2, now: start + second) == .rejectedBackoff(until: until))
        #expect(machine.acquire(3, now: until) == .granted)
    }

    @Test func aShorterRetryAfterDoesNotShortenABackOffUnderWay() {
        let machine = makeMachine(maxConcurrency: 2, maxQueue: 4)
        #expect(machine.acquire(0, now: start) == .granted)
        #expect(machine.acquire(1, now: start) == .granted)
        _ = machine.release(rateLimited(retryAfter: 10), now: start)
        _ = machine.release(rateLimited(retryAfter: 1), now: start + second)
        #expect(machine.backoffUntil == start + 10 * second)
    }

    @Test(
        "Retry-After is honoured up to an hour",
        arguments: [
            (0, 0),
            (1, 1),
            (2, 2),
            (120, 120),
            (3_600, 3_600),
            (3_601, 3_600),
            (86_400, 3_600),
            (999_999_999, 3_600),
        ]
    )
    func retryAfterIsCapped(retryAfter: Int, expectedSeconds: UInt64) {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 4)
        #expect(machine.acquire(0, now: start) == .granted)
        _ = machine.release(rateLimited(retryAfter: retryAfter), now: start)
        let until = start + expectedSeconds * second
        if expectedSeconds > 0 {
            #expect(machine.backoffUntil == until)
            #expect(machine.acquire(1, now: until - 1) == .rejectedBackoff(until: until))
        }
        #expect(machine.acquire(2, now: until) == .granted)
    }

    @Test func negativeRetryAfterMeansNoBackOff() {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 4)
        #expect(machine.acquire(0, now: start) == .granted)
        #expect(machine.acquire(1, now: start) == .queued)
        #expect(machine.release(rateLimited(retryAfter: -5), now: start) == Wakeups(granted: [1]))
    }

    @Test(
        "Without Retry-After, back-off doubles from 1 s up to the maximum",
        arguments: [
            (30, [1, 2, 4, 8, 16, 30, 30]),
            (5, [1, 2, 4, 5, 5]),
            (1, [1, 1, 1]),
            (3_600, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024, 2_048, 3_600, 3_600]),
        ] as [(UInt64, [UInt64])]
    )
    func exponentialBackOff(backoffMaxSeconds: UInt64, expectedDelays: [UInt64]) {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 4, backoffMaxSeconds: backoffMaxSeconds)
        var now = start
        var delays: [UInt64] = []
        for id in expectedDelays.indices {
            #expect(machine.acquire(id, now: now) == .granted)
            let wakeups = machine.release(rateLimited(), now: now)
            delays.append((wakeups.backoffUntil - now) / second)
            #expect(
                machine.acquire(id + 1_000, now: wakeups.backoffUntil - 1)
                    == .rejectedBackoff(until: wakeups.backoffUntil)
            )
            now = wakeups.backoffUntil
        }
        #expect(delays == expectedDelays)
    }

    @Test func manyRateLimitsInARowStayAtTheMaximum() {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 4, backoffMaxSeconds: 30)
        var now = start
        for id in 0..<80 {
            #expect(machine.acquire(id, now: now) == .granted)
            let until = machine.release(rateLimited(), now: now).backoffUntil
            #expect(until > now)
            #expect(until - now <= 30 * second)
            now = until
        }
        #expect(machine.backoffUntil == now)
    }

    @Test func aSuccessResetsTheExponentialBackOff() {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 4)
        var now = start
        for (id, expected) in [1, 2, 4].enumerated() {
            #expect(machine.acquire(id, now: now) == .granted)
            let until = machine.release(rateLimited(), now: now).backoffUntil
            #expect(until - now == UInt64(expected) * second)
            now = until
        }
        #expect(machine.acquire(10, now: now) == .granted)
        #expect(machine.release(.success, now: now) == Wakeups())

        #expect(machine.acquire(11, now: now) == .granted)
        #expect(machine.release(rateLimited(), now: now).backoffUntil == now + second)
    }

    @Test func anOtherOutcomeDoesNotResetTheExponentialBackOff() {
        let machine = makeMachine(maxConcurrency: 1, maxQueue: 4)
        #expect(machine.acquire(0, now: start) == .granted)
        var now = machine.release(rateLimited(), now: start).backoffUntil
        #expect(now == start + second)
        #expect(machine.acquire(1, now: now) == .granted)
        #expect(machine.release(.other, now: now) == Wakeups())
        #expect(machine.acquire(2, now: now) == .granted)
        let until = machine.release(rateLimited(), now: now).backoffUntil
        #expect(until == now + 2 * second)
        now = until
        #expect(machine.acquire(3, now: now) == .granted)
    }
}

@Suite("UpstreamGovernor.StateMachine: the upstream's maximum-concurrent-requests")
struct UpstreamGovernorStateMachineLimitTests {
    @Test(
        "The limit only ever comes down, and never below 1",
        arguments: [
            (4, [2], 2),
            (4, [2, 10], 2),
            (4, [3, 2], 2),
            (4, [2, 3], 2),
            (4, [1], 1),
            (2, [5], 2),
            (4, [0], 4),
            (4, [-3], 4),
            (4, [2, 0], 2),
        ]
    )
    func learnedLimit(configured: Int, told: [Int], expected: Int) {
        let machine = makeMachine(maxConcurrency: configured, maxQueue: 4)
        for (id, maximum) in told.enumerated() {
            #expect(machine.acquire(id, now: start) == .granted)
            _ = machine.release(rateLimited(retryAfter: 0, maximumConcurrent: maximum), now: start)
        }
        #expect(machine.limit == expected)
        #expect(machine.inFlight == 0)
        for id in 100..<(100 + expected) { #expect(machine.acquire(id, now: start) == .granted) }
        #expect(machine.acquire(200, now: start) == .queued)
    }

    @Test func laterGrantsRespectALoweredLimit() {
        let machine = makeMachine(maxConcurrency: 4, maxQueue: 8)
        for id in 0..<4 { #expect(machine.acquire(id, now: start) == .granted) }
        #expect(
            machine.release(rateLimited(retryAfter: 0, maximumConcurrent: 2), now: start) == Wakeups()
        )
        #expect(machine.limit == 2)
        #expect(machine.inFlight == 3)

        #expect(machine.acquire(4, now: start) == .queued)
        #expect(machine.acquire(5, now: start) == .queued)
        // 3 → 2 in flight: still at the new limit, so nobody is let through.
        #expect(machine.release(.success, now: start) == Wakeups())
        #expect(machine.inFlight == 2)
        // 2 → 1: one waiter, the oldest, fills the slot.
        #expect(machine.release(.success, now: start) == Wakeups(granted: [4]))
        #expect(machine.inFlight == 2)
        #expect(machine.release(.success, now: start) == Wakeups(granted: [5]))
        #expect(machine.acquire(6, now: start) == .queued)
        #expect(machine.inFlight == 2)
    }

    @Test func aLearnedLimitRisesByOneAfterEnoughSuccessesInARowUpToTheConfiguredOne() {
        let machine = makeMachine(maxConcurrency: 3, maxQueue: 4)
        let needed = Machine.successesToRaiseLimit
        #expect(machine.acquire(0, now: start) == .granted)
        _ = machine.release(rateLimited(retryAfter: 0, maximumConcurrent: 1), now: start)
        #expect(machine.limit == 1)

        var id = 1
        func succeed(times: Int) {
            for _ in 0..<times {
                #expect(machine.acquire(id, now: start) == .granted)
                _ = machine.release(.success, now: start)
                id += 1
            }
        }
        succeed(times: needed - 1)
        #expect(machine.limit == 1)
        // A 429 in between starts the count again.
        #expect(machine.acquire(id, now: start) == .granted)
        _ = machine.release(rateLimited(retryAfter: 0), now: start)
        succeed(times: needed - 1)
        #expect(machine.limit == 1)
        succeed(times: 1)
        #expect(machine.limit == 2)
        #expect(machine.learnedLimit == 2)
        succeed(times: needed)
        #expect(machine.limit == 3)
        #expect(machine.learnedLimit == nil, "back at the configured limit, nothing learned is kept")
        succeed(times: needed)
        #expect(machine.limit == 3, "never above the configured limit")
    }

    @Test func aRisingLimitLetsAWaiterThrough() {
        let machine = makeMachine(maxConcurrency: 2, maxQueue: 4)
        #expect(machine.acquire(0, now: start) == .granted)
        _ = machine.release(rateLimited(retryAfter: 0, maximumConcurrent: 1), now: start)
        for id in 1..<Machine.successesToRaiseLimit {
            #expect(machine.acquire(id, now: start) == .granted)
            _ = machine.release(.success, now: start)
        }
        #expect(machine.acquire(100, now: start) == .granted)
        #expect(machine.acquire(101, now: start) == .queued)
        #expect(machine.acquire(102, now: start) == .queued)
        // The success that raises the limit to 2 frees one slot and opens another: both waiters go.
        #expect(machine.release(.success, now: start) == Wakeups(granted: [101, 102]))
        #expect(machine.limit == 2)
    }

    @Test func aLimitWithoutRetryAfterStillBacksOffAndRejectsWaiters() {
        let machine = makeMachine(maxConcurrency: 2, maxQueue: 4)
        #expect(machine.acquire(0, now: start) == .granted)
        #expect(machine.acquire(1, now: start) == .granted)
        #expect(machine.acquire(2, now: start) == .queued)
        #expect(
            machine.release(rateLimited(maximumConcurrent: 1), now: start)
                == Wakeups(granted: [], rejected: [2], backoffUntil: start + second)
        )
        #expect(machine.limit == 1)
    }
}
