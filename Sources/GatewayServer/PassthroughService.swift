import FoundationEssentials
import GatewayCore
import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Forwards the routes that are not cached: starting test runs, resubmitting an invocation, reading one.
/// The team's token is swapped for the upstream key; the request waits its turn at the governor and is
/// spent from the team's budget. A write that succeeds drops the cached list pages it makes wrong.
public final class PassthroughService: Sendable {
    private let upstream: any UpstreamClient
    private let governor: UpstreamGovernor
    private let cache: ResponseCache
    private let budgets: TeamBudgets
    private let apiKey: Secret
    private let logger: Logger

    /// Creates the service.
    public init(
        upstream: any UpstreamClient,
        governor: UpstreamGovernor,
        cache: ResponseCache,
        budgets: TeamBudgets,
        apiKey: Secret,
        logger: Logger
    ) {
        self.upstream = upstream
        self.governor = governor
        self.cache = cache
        self.budgets = budgets
        self.apiKey = apiKey
        self.logger = logger
    }

    /// Forwards one request; never fails (every problem is an answer).
    func forward(
        _ route: PassthroughRoute,
        body: ByteBuffer?,
        contentType: String?,
        requestID: String,
        spender: ListService.Spender?,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<GatewayResponse> {
        if let spender, case .denied(let retryAfter) = budgets.spend(team: spender.team, perMinute: spender.perMinute) {
            var response = Self.error(.teamBudgetSpent(retryAfterSeconds: retryAfter))
            response.trace.budgetRefused = true
            return eventLoop.makeSucceededFuture(response)
        }
        var headers = HTTPHeaders([
            ("xi-api-key", apiKey.revealed),
            ("Accept", "application/json"),
            ("User-Agent", ListService.userAgent),
            ("X-Request-Id", requestID),
        ])
        if route.method == .POST { headers.add(name: "Content-Type", value: contentType ?? "application/json") }
        let request = UpstreamRequest(
            method: route.method,
            target: route.upstreamPath,
            headers: headers,
            body: route.method == .POST ? (body ?? ByteBuffer()) : nil
        )
        let governor = self.governor
        let started = NIODeadline.now()
        return governor.acquire(on: eventLoop).flatMap {
            self.upstream.execute(request, on: eventLoop).always { result in
                governor.release(UpstreamGovernor.Outcome(result, now: Int(time(nil))))
            }
        }.map { response in
            if (200..<300).contains(response.status) { self.invalidate(after: route, body: body) }
            var answer = GatewayResponse(passingOn: response)
            answer.trace.upstreamStatus = response.status
            answer.trace.upstreamNanoseconds = UInt64(max(0, (NIODeadline.now() - started).nanoseconds))
            answer.trace.causedUpstreamRequest = true
            return answer
        }.recover { error in
            if let rejection = error as? UpstreamGovernor.Rejection { return Self.error(GatewayError(rejection)) }
            let upstreamError = error as? UpstreamError ?? .invalidResponse("\(error)")
            self.logger.warning("forwarded request failed", metadata: ["error": "\(upstreamError)"])
            var answer = Self.error(GatewayError(upstreamError))
            answer.trace.causedUpstreamRequest = true
            return answer
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
        let dropped: Int
        if let agent {
            dropped = cache.removeAll { $0.concerns(agent: agent) }
        } else {
            dropped = cache.removeAll { _ in true }
        }
        logger.debug("a write changed the lists; pages dropped", metadata: ["dropped": "\(dropped)"])
    }

    private struct ResubmitBody: Decodable {
        // The upstream's field name.
        // swift-format-ignore: AlwaysUseLowerCamelCase
        var agent_id: String?
    }

    private static func error(_ error: GatewayError) -> GatewayResponse {
        var response = error.response()
        response.cacheStatus = .value("\(ListService.cacheName); detail=\(error)")
        return response
    }
}
