import GatewayCore
import NIOCore
import Testing

@testable import GatewayShared

/// The shared governor's local rules, without Redis: who tries the script, who queues, who is let through,
/// refused or sent to the fallback governor, and which slot a release gives back.
@Suite("SharedGovernor.StateMachine")
struct SharedGovernorStateMachineTests {
    typealias Machine = SharedGovernor.StateMachine
    typealias Actions = Machine.Actions
    let now: UInt64 = 1_000_000_000_000

    @Test func requestsToAnEmptyQueueTryAtOnceAndOnlyTheFullOnesQueue() {
        var machine = Machine(maxQueue: 1, limit: 2)
        #expect(machine.acquire(0, now: now) == .attempt)
        #expect(machine.acquire(1, now: now) == .attempt, "several tries may be on their way together")
        #expect(machine.answered(0, .granted(limit: 2), token: "t0", now: now) == Actions(granted: [0]))
        #expect(machine.answered(1, .full(limit: 2), token: "t1", now: now) == Actions(queued: [1]))
        #expect(machine.acquire(2, now: now) == .rejectedQueueFull, "the queue holds one")
        #expect(machine.leases == ["t0"])
        #expect(machine.queue.count == 1)
    }

    @Test func withNoQueueAFullAnswerRefuses() {
        var machine = Machine(maxQueue: 0, limit: 1)
        #expect(machine.acquire(0, now: now) == .attempt)
        #expect(machine.answered(0, .full(limit: 1), token: "t0", now: now) == Actions(rejectedQueueFull: [0]))
        #expect(machine.queue.isEmpty)
    }

    @Test func onlyTheHeadTriesWhenWokenAndEachGrantLetsTheNextTry() {
        var machine = Machine(maxQueue: 10, limit: 1)
        for id in 0..<3 { #expect(machine.acquire(id, now: now) == .attempt) }
        for id in 0..<3 { _ = machine.answered(id, .full(limit: 1), token: "t\(id)", now: now) }
        #expect(machine.acquire(3, now: now) == .queued, "behind the queue, without trying")
        #expect(machine.wake() == Actions(attempt: 0))
        #expect(machine.wake() == Actions(), "the head's try is on its way")
        #expect(machine.answered(0, .granted(limit: 1), token: "t0", now: now) == Actions(granted: [0], attempt: 1))
        #expect(machine.answered(1, .full(limit: 1), token: "t1", now: now) == Actions(), "still the head")
        #expect(machine.queue.first == 1)
        #expect(machine.wake() == Actions(attempt: 1))
    }

    /// A slot announced while the tries were on their way: their "full" may be older than the slot.
    @Test func aWakeUpDuringATryIsNotLost() {
        var machine = Machine(maxQueue: 10, limit: 1)
        _ = machine.acquire(0, now: now)
        _ = machine.answered(0, .full(limit: 1), token: "t0", now: now)
        #expect(machine.wake() == Actions(attempt: 0))
        #expect(machine.wake() == Actions())
        #expect(machine.answered(0, .full(limit: 1), token: "t0", now: now) == Actions(attempt: 0))
        #expect(machine.answered(0, .full(limit: 1), token: "t0", now: now) == Actions(), "once")

        var arriving = Machine(maxQueue: 10, limit: 1)
        #expect(arriving.acquire(0, now: now) == .attempt)
        #expect(arriving.wake() == Actions(), "nobody queued yet")
        #expect(arriving.answered(0, .full(limit: 1), token: "t0", now: now) == Actions(queued: [0], attempt: 0))
    }

    @Test func aBackoffRefusesTheQueueAndLaterArrivalsUntilItEnds() {
        var machine = Machine(maxQueue: 10, limit: 1)
        for id in 0..<3 { _ = machine.acquire(id, now: now) }
        _ = machine.answered(1, .full(limit: 1), token: "t1", now: now)
        _ = machine.answered(2, .full(limit: 1), token: "t2", now: now)
        let until = now + 3_000_000_000
        #expect(
            machine.answered(0, .backingOff(milliseconds: 3_000, limit: 1), token: "t0", now: now)
                == Actions(rejectedBackoff: [0, 1, 2], backoffUntil: until)
        )
        #expect(machine.acquire(3, now: now + 1) == .rejectedBackoff(until: until))
        #expect(machine.acquire(4, now: until) == .attempt)
    }

    @Test func aReleaseThatStartsABackoffRefusesTheQueue() {
        var machine = Machine(maxQueue: 10, limit: 1)
        _ = machine.acquire(0, now: now)
        _ = machine.acquire(1, now: now)
        _ = machine.answered(0, .granted(limit: 1), token: "t0", now: now)
        _ = machine.answered(1, .full(limit: 1), token: "t1", now: now)
        #expect(machine.slotToRelease(sharedTierUp: true) == .lease("t0"))
        let reply = GovernorScripts.ReleaseReply(backoffMilliseconds: 1_500, limit: 1)
        #expect(
            machine.released(reply, now: now) == Actions(rejectedBackoff: [1], backoffUntil: now + 1_500_000_000)
        )
        #expect(machine.released(.init(backoffMilliseconds: 0, limit: 1), now: now) == Actions())
    }

    @Test func aFailedTrySendsItAndTheQueueToTheFallback() {
        var machine = Machine(maxQueue: 10, limit: 1)
        for id in 0..<3 { _ = machine.acquire(id, now: now) }
        _ = machine.answered(1, .full(limit: 1), token: "t1", now: now)
        _ = machine.answered(2, .full(limit: 1), token: "t2", now: now)
        #expect(machine.failed(0) == Actions(fallback: [0, 1, 2]))
        #expect(machine.queue.isEmpty)
        #expect(machine.attempting.isEmpty)
    }

    @Test func aLeaseGrantedToARequestThatTimedOutIsGivenBack() {
        var machine = Machine(maxQueue: 10, limit: 1)
        _ = machine.acquire(0, now: now)
        _ = machine.answered(0, .full(limit: 1), token: "t0", now: now)
        #expect(machine.wake() == Actions(attempt: 0))
        let cancelled = machine.cancel(0)
        #expect(cancelled)
        #expect(machine.answered(0, .granted(limit: 1), token: "t0", now: now) == Actions(orphanedLease: "t0"))
        #expect(machine.leases.isEmpty)
    }

    /// Which slot a release gives back, by what is held and whether the shared tier is up.
    @Test(arguments: [
        (leases: 1, fallback: 1, up: true, expected: "fallback"),
        (leases: 1, fallback: 1, up: false, expected: "lease"),
        (leases: 1, fallback: 0, up: true, expected: "lease"),
        (leases: 0, fallback: 1, up: false, expected: "fallback"),
        (leases: 0, fallback: 0, up: true, expected: "none"),
    ])
    func releaseGivesBack(leases: Int, fallback: Int, up: Bool, expected: String) {
        var machine = Machine(maxQueue: 10, limit: 10)
        for id in 0..<leases {
            _ = machine.acquire(id, now: now)
            _ = machine.answered(id, .granted(limit: 10), token: "t\(id)", now: now)
        }
        for _ in 0..<fallback { machine.fallbackGranted() }
        let slot = machine.slotToRelease(sharedTierUp: up)
        switch slot {
        case .lease: #expect(expected == "lease")
        case .fallback: #expect(expected == "fallback")
        case .none: #expect(expected == "none")
        }
        #expect(machine.leases.count + machine.fallbackSlots == max(0, leases + fallback - 1))
    }

    @Test func theLimitShownIsTheLastOneRedisSaid() {
        var machine = Machine(maxQueue: 10, limit: 8)
        #expect(machine.limit == 8)
        _ = machine.acquire(0, now: now)
        _ = machine.answered(0, .granted(limit: 3), token: "t0", now: now)
        #expect(machine.limit == 3)
        machine.configure(maxConcurrency: 6, maxQueue: 2)
        #expect(machine.limit == 6)
        #expect(machine.maxQueue == 2)
    }

    // MARK: - Replies and arguments

    @Test func repliesRead() throws {
        let granted = RESPValue.array([.bulkString(ByteBuffer(string: "granted")), .integer(2), .integer(5)])
        #expect(try GovernorScripts.AcquireReply(granted) == .granted(limit: 5))
        let backoff = RESPValue.array([.bulkString(ByteBuffer(string: "backoff")), .integer(1_200), .integer(5)])
        #expect(try GovernorScripts.AcquireReply(backoff) == .backingOff(milliseconds: 1_200, limit: 5))
        #expect(
            try GovernorScripts.ReleaseReply(.array([.integer(0), .integer(4)]))
                == .init(backoffMilliseconds: 0, limit: 4)
        )
        #expect(throws: RedisError.self) { try GovernorScripts.AcquireReply(.integer(1)) }
        #expect(throws: RedisError.self) { try GovernorScripts.ReleaseReply(.null) }
    }

    /// A release's `Retry-After` and maximum, as the script receives them (ARGV 5 and 6).
    @Test(arguments: [
        (UpstreamGovernor.Outcome.success, "success", -1, 0),
        (.rateLimited(retryAfterSeconds: 7, maximumConcurrent: 3), "rateLimited", 7_000, 3),
        (.rateLimited(retryAfterSeconds: nil, maximumConcurrent: nil), "rateLimited", -1, 0),
        (.rateLimited(retryAfterSeconds: 999_999, maximumConcurrent: -2), "rateLimited", 3_600_000, 0),
        (.other, "other", -1, 0),
    ])
    func releaseArguments(outcome: UpstreamGovernor.Outcome, name: String, retryAfter: Int, maximum: Int) {
        let configuration = UpstreamGovernor.Configuration(
            maxConcurrency: 4,
            maxQueue: 10,
            queueTimeout: .seconds(1),
            backoffMaxSeconds: 30
        )
        let arguments = GovernorScripts.releaseArguments(
            token: "tok",
            outcome: outcome,
            configuration: configuration,
            channel: "c"
        )
        let expected: [RedisArgument] = [
            "tok", .string(name), 4, .integer(UpstreamGovernor.successesToRaiseLimit), .integer(retryAfter),
            .integer(maximum), 30_000, .integer(GovernorScripts.learnedLifeMilliseconds), "c",
        ]
        #expect(arguments == expected)
    }
}
