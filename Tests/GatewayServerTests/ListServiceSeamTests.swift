import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

@testable import GatewayServer

/// Records what the list service asks of each seam a shared tier implements, and passes every call on to
/// the in-process implementation.
final class SeamRecorder: Sendable {
    let calls = Locked<[String]>([])

    func note(_ call: String) { calls.withLock { $0.append(call) } }

    var log: [String] { calls.withLock { $0 } }
}

final class RecordingPageStore: PageStore {
    let inner: ResponseCache
    let recorder: SeamRecorder

    init(_ inner: ResponseCache, _ recorder: SeamRecorder) {
        self.inner = inner
        self.recorder = recorder
    }

    func lookup(_ key: CacheKey) -> ResponseCache.Lookup {
        let found = inner.lookup(key)
        switch found {
        case .fresh: recorder.note("lookup fresh")
        case .stale: recorder.note("lookup stale")
        case .miss: recorder.note("lookup miss")
        }
        return found
    }

    func store(_ page: CachedPage, for key: CacheKey) -> ResponseCache.StoreOutcome {
        recorder.note("store \(key.query)")
        return inner.store(page, for: key)
    }

    func remove(_ key: CacheKey) {
        recorder.note("remove \(key.query)")
        inner.remove(key)
    }

    func markRevalidationFailed(_ key: CacheKey) {
        recorder.note("keep stale \(key.query)")
        inner.markRevalidationFailed(key)
    }

    func invalidate(agent: String?) -> Int {
        recorder.note("invalidate \(agent ?? "*")")
        return inner.invalidate(agent: agent)
    }

    func fits(bodyBytes: Int, for key: CacheKey) -> Bool { inner.fits(bodyBytes: bodyBytes, for: key) }
    var ttlSeconds: Int { inner.ttlSeconds }
    var staleSeconds: Int { inner.staleSeconds }
    func now() -> UInt64 { inner.now() }
    var statistics: ResponseCache.Statistics { inner.statistics }
    var maxBytes: Int { inner.maxBytes }
    func pagesByAgent(limit: Int) -> AgentPages { inner.pagesByAgent(limit: limit) }
}

struct RecordingSlots: UpstreamSlots {
    func update(_ configuration: UpstreamGovernor.Configuration) { inner.update(configuration) }

    let inner: UpstreamGovernor
    let recorder: SeamRecorder

    func acquire(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        recorder.note("acquire")
        return inner.acquire(on: eventLoop)
    }

    func release(_ outcome: UpstreamGovernor.Outcome) {
        recorder.note("release \(outcome)")
        inner.release(outcome)
    }

    var snapshot: UpstreamGovernor.Snapshot { inner.snapshot }
}

struct RecordingLedger: BudgetLedger {
    let inner: TeamBudgets
    let recorder: SeamRecorder

    func spend(team: String, perMinute: Int?) -> BudgetDecision {
        let decision = inner.spend(team: team, perMinute: perMinute)
        recorder.note("spend \(team) \(decision)")
        return decision
    }

    func settle(team: String, perMinute: Int, shared: SharedBudget) {
        recorder.note("settle \(team) \(shared.decision)")
        inner.settle(team: team, perMinute: perMinute, shared: shared)
    }

    func state(team: String, perMinute: Int) -> BudgetState { inner.state(team: team, perMinute: perMinute) }

    var version: Int { inner.version }

    var counts: [String: BudgetCounts] { inner.counts }
}

/// The list service reaches pages, slots and budgets only through their protocols: a shared
/// implementation put behind them sees every decision, in this order.
@Suite("ListService through its seams")
struct ListServiceSeamTests {
    let clock = ManualClock()
    let recorder = SeamRecorder()
    let loop = EmbeddedEventLoop()
    let upstream = ScriptedUpstreamClient(script: ServiceFixture.pages)
    let service: ListService

    init() {
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30, staleSeconds: 60, shardCount: 1, clock: clock)
        let governor = UpstreamGovernor(
            configuration: .init(maxConcurrency: 4, maxQueue: 16, queueTimeout: .seconds(5), backoffMaxSeconds: 30),
            clock: clock
        )
        service = ListService(
            cache: RecordingPageStore(cache, recorder),
            upstream: upstream,
            governor: RecordingSlots(inner: governor, recorder: recorder),
            apiKey: Secret("k"),
            waitLimit: .seconds(10),
            logger: Logger(label: "test"),
            budgets: RecordingLedger(inner: TeamBudgets(clock: clock), recorder: recorder),
            clock: clock
        )
    }

    private func get(_ query: String, team: String = "red") throws -> GatewayResponse {
        let future = service.respond(
            toQuery: Substring(query),
            on: loop,
            spender: ListService.Spender(team: team, perMinute: 10)
        )
        loop.run()
        return try future.wait()
    }

    @Test func aMissAHitAndAStaleHitAskTheSeamsInOrder() throws {
        _ = try get("page_size=5")
        #expect(
            recorder.log == [
                "lookup miss", "lookup miss", "spend red allowed", "acquire", "release success",
                "store page_size=5",
            ],
            "a miss looks twice (before and inside the flight table), spends once, takes and gives one slot"
        )

        recorder.calls.withLock { $0 = [] }
        _ = try get("page_size=5")
        #expect(recorder.log == ["lookup fresh"], "a hit asks nothing else")

        recorder.calls.withLock { $0 = [] }
        clock.advance(seconds: 31)
        let stale = try get("page_size=5", team: "blue")
        #expect(stale.cacheStatus == .stale(staleFor: 1, revalidationFailed: false))
        #expect(
            recorder.log == [
                "lookup stale", "spend blue allowed", "acquire", "release success", "lookup stale",
                "store page_size=5",
            ],
            "a refresh looks at the page it replaces once more (its Last-Modified stays if the bytes did not change)"
        )
        #expect(upstream.requests.count == 2)
    }
}
