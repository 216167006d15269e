import Testing

@testable import GatewayCore

private typealias WaitQueue = UpstreamGovernor.WaitQueue
private typealias Machine = UpstreamGovernor.StateMachine

/// Holds a queue so that `#expect` can call its mutating methods: the macro captures values, not variables.
private final class QueueDriver {
    var queue = WaitQueue()

    init(_ ids: some Sequence<Int>) {
        for id in ids { queue.append(id) }
    }

    func remove(_ id: Int) -> Bool { queue.remove(id) }
    func popFirst() -> Int? { queue.popFirst() }
    func removeAll() -> [Int] { queue.removeAll() }
}

@Suite("UpstreamGovernor.WaitQueue: first in, first out, any waiter cancelled")
struct UpstreamGovernorWaitQueueTests {
    /// Cancellations in several orders, then what is left, oldest first.
    @Test(
        arguments: [
            ([1], [1, 2, 3, 4, 5], [2, 3, 4, 5]),
            ([5], [1, 2, 3, 4, 5], [1, 2, 3, 4]),
            ([3], [1, 2, 3, 4, 5], [1, 2, 4, 5]),
            ([2, 3, 4], [1, 2, 3, 4, 5], [1, 5]),
            ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], []),
            ([5, 4, 3, 2, 1], [1, 2, 3, 4, 5], []),
            ([4, 2], [1, 2, 3, 4, 5], [1, 3, 5]),
        ]
    )
    func cancelling(_ cancelled: [Int], from queued: [Int], leaves expected: [Int]) {
        let driver = QueueDriver(queued)
        for id in cancelled { #expect(driver.remove(id)) }
        #expect(driver.queue.ids == expected)
        #expect(driver.queue.count == expected.count)
        #expect(driver.queue.isEmpty == expected.isEmpty)
        var popped: [Int] = []
        while let id = driver.popFirst() { popped.append(id) }
        #expect(popped == expected)
        #expect(driver.queue.storedEntries == 0)
    }

    @Test func cancellingWhatIsNotWaitingChangesNothing() {
        let driver = QueueDriver([1, 2, 3])
        #expect(driver.remove(2))
        #expect(!driver.remove(2), "already cancelled")
        #expect(driver.popFirst() == 1)
        #expect(!driver.remove(1), "already taken")
        #expect(!driver.remove(99), "never queued")
        #expect(driver.queue.ids == [3])
    }

    @Test func aCancelledWaiterIsSkippedWhenTheOldestIsTaken() {
        let driver = QueueDriver([1, 2, 3, 4])
        #expect(driver.remove(2))
        #expect(driver.remove(3))
        #expect(driver.popFirst() == 1)
        #expect(driver.queue.storedEntries == 1, "the cancelled entries behind the oldest went with it")
        #expect(driver.popFirst() == 4)
        #expect(driver.popFirst() == nil)
    }

    @Test func removeAllReturnsTheWaitersOldestFirstAndEmptiesTheQueue() {
        let driver = QueueDriver([1, 2, 3, 4])
        #expect(driver.remove(3))
        #expect(driver.removeAll() == [1, 2, 4])
        #expect(driver.queue.isEmpty)
        #expect(driver.queue.storedEntries == 0)
        driver.queue.append(5)
        #expect(driver.queue.ids == [5])
    }

    /// Cancelled entries in the middle are kept only while they are fewer than the waiters (plus a few).
    @Test func cancelledEntriesNeverOutnumberWaitersByMuch() {
        let driver = QueueDriver(0..<1_000)
        for id in stride(from: 998, to: 0, by: -1) {
            #expect(driver.remove(id))
            #expect(driver.queue.storedEntries <= 2 * driver.queue.count + 16)
        }
        #expect(driver.queue.ids == [0, 999])
    }
}

@Suite("UpstreamGovernor.StateMachine: a full queue of the largest size")
struct UpstreamGovernorLargestQueueTests {
    /// The largest `UPSTREAM_MAX_QUEUE` the configuration accepts.
    static let largest = 1_000_000

    @Test func theLargestIsWhatTheConfigurationAccepts() throws {
        let accepted = try GatewayConfiguration {
            ["ELEVENLABS_API_KEY": "k", "UPSTREAM_MAX_QUEUE": "\(Self.largest)"][$0]
        }
        #expect(accepted.upstreamMaxQueue == Self.largest)
        #expect(throws: ConfigurationError.self) {
            try GatewayConfiguration { ["ELEVENLABS_API_KEY": "k", "UPSTREAM_MAX_QUEUE": "\(Self.largest + 1)"][$0] }
        }
    }

    /// A million waiters, and all but every thousandth timing out newest first: the order in which finding
    /// each in a list costs the most (about 5 * 10^11 steps in all). The queue's work must stay linear in
    /// the number of calls, and its storage bounded by the waiters left.
    ///
    /// It yields now and then: a test that holds one of the few threads of Swift's cooperative pool for
    /// long (seconds under ThreadSanitizer) starves the tests that wait for processes and sockets.
    @Test func aMillionWaitersTimingOutCostLinearWork() async {
        let largest = Self.largest
        var machine = Machine(
            settings: Machine.Settings(maxConcurrency: 1, maxQueue: largest, backoffMaxNanoseconds: 1_000_000_000)
        )
        let first = machine.acquire(0, now: 0)
        #expect(first == .granted)
        var queued = 0
        for id in 1...largest {
            if machine.acquire(id, now: 0) == .queued { queued += 1 }
            if id % 10_000 == 0 { await Task.yield() }
        }
        #expect(queued == largest)
        let oneTooMany = machine.acquire(largest + 1, now: 0)
        #expect(oneTooMany == .rejectedQueueFull)
        #expect(machine.queue.count == largest)

        var cancelled = 0
        for id in stride(from: largest, through: 1, by: -1) where id % 1_000 != 0 {
            if machine.cancel(id) { cancelled += 1 }
            if id % 10_000 == 1 { await Task.yield() }
        }
        #expect(cancelled == largest - largest / 1_000)
        #expect(machine.queue.count == largest / 1_000)
        #expect(machine.queue.ids == Array(stride(from: 1_000, through: largest, by: 1_000)))
        #expect(machine.queue.storedEntries <= 2 * machine.queue.count + 16)
        #expect(machine.queue.entriesVisited <= 2 * largest)

        // The waiters left keep their order, and the queue has room again.
        let wakeups = machine.release(.success, now: 0)
        #expect(wakeups == Machine.Wakeups(granted: [1_000]))
        let newcomer = machine.acquire(largest + 2, now: 0)
        #expect(newcomer == .queued)
        #expect(machine.queue.ids.last == largest + 2)
    }
}
