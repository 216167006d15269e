import FoundationEssentials
import GatewayCore
import Logging
import NIOCore
import NIOHTTP1

/// Forwards the routes that are not cached: starting test runs, resubmitting an invocation, reading one.
/// The team's token is swapped for the upstream key; the request waits its turn at the governor and is
/// spent from the team's budget. A write that succeeds drops the cached list pages it makes wrong.
public final class PassthroughService: Sendable {
    private let upstream: GovernedUpstream
    private let cache: any PageStore
    private let budgets: any BudgetLedger
    /// The tier replicas share, whose budgets are spent when it is up.
    private let shared: (any SharedTier)?

    /// Creates the service.
    public init(
        upstream: any UpstreamClient,
        governor: any UpstreamSlots,
        cache: any PageStore,
        budgets: any BudgetLedger,
        key: UpstreamKey,
        logger: Logger,
        metrics: GatewayMetrics? = nil,
        clock: any CacheClock = SystemCacheClock(),
        shared: (any SharedTier)? = nil
    ) {
        self.shared = shared
        self.upstream = GovernedUpstream(
            client: upstream,
            slots: governor,
            key: key,
            clock: clock,
            metrics: metrics,
            logger: logger
        )
        self.cache = cache
        self.budgets = budgets
    }

    /// Forwards one request; never fails (every problem is an answer).
    func forward(
        _ route: PassthroughRoute,
        body: ByteBuffer?,
        contentType: String?,
        correlation: Correlation,
        spender: ListService.Spender?,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<GatewayResponse> {
        // With the shared tier up, the team's one bucket for every replica; else (or when Redis cannot say)
        // this replica's own.
        let decision: EventLoopFuture<SharedBudget?>
        if let spender, let perMinute = spender.perMinute, let shared, shared.isUp {
            decision = shared.spend(team: spender.team, perMinute: perMinute, on: eventLoop)
        } else {
            decision = eventLoop.makeSucceededFuture(nil)
        }
        return decision.flatMap { answer in
            if let answer, let spender, let perMinute = spender.perMinute {
                self.budgets.settle(team: spender.team, perMinute: perMinute, shared: answer)
            }
            let spent = answer?.decision ?? spender.map { self.budgets.spend(team: $0.team, perMinute: $0.perMinute) }
            if case .denied(let retryAfter) = spent {
                var response = Self.error(.teamBudgetSpent(retryAfterSeconds: retryAfter))
                response.trace.budgetRefused = true
                return eventLoop.makeSucceededFuture(response)
            }
            return self.send(route, body: body, contentType: contentType, correlation: correlation, on: eventLoop)
        }
    }

    /// The upstream exchange of a request whose budget is spent.
    private func send(
        _ route: PassthroughRoute,
        body: ByteBuffer?,
        contentType: String?,
        correlation: Correlation,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<GatewayResponse> {
        let request = upstream.request(
            method: route.method,
            target: route.upstreamPath,
            correlation: correlation,
            body: body,
            contentType: contentType
        )
        return upstream.execute(request, on: eventLoop, context: ["route": "forwarded"]).map { exchange in
            switch exchange.result {
            case .success(let response):
                if (200..<300).contains(response.status) { self.invalidate(after: route, body: body) }
                var answer = GatewayResponse(passingOn: response)
                answer.trace.upstreamStatus = response.status
                answer.trace.upstreamNanoseconds = exchange.nanoseconds
                answer.trace.causedUpstreamRequest = true
                return answer
            case .failure(let error):
                var answer = Self.error(error)
                answer.trace.causedUpstreamRequest = exchange.reachedUpstream
                return answer
            }
        }
    }

    /// Drops the list pages a successful write makes wrong: those of its agent and those without an agent
    /// filter. When the agent cannot be told, every page goes: a stale list is worse than a miss.
    private func invalidate(after route: PassthroughRoute, body: ByteBuffer?) {
        let agent: String?
        switch route {
        case .invocation:
            return
        case .runTests(let segment):
            agent = String(segment)
        case .resubmit:
            agent = body.flatMap {
                try? JSONDecoder().decode(ResubmitBody.self, from: Data($0.readableBytesView)).agent_id
            }
        }
        let dropped = cache.invalidate(agent: agent)
        upstream.logger.debug("a write changed the lists; pages dropped", metadata: ["dropped": "\(dropped)"])
    }

    private struct ResubmitBody: Decodable {
        // The upstream's field name.
        // swift-format-ignore: AlwaysUseLowerCamelCase
        var agent_id: String?
    }

    private static func error(_ error: GatewayError) -> GatewayResponse {
        var response = error.response()
        response.cacheStatus = .refused(detail: error.shortDescription)
        return response
    }
}
