import GatewayCore
import Logging
import NIOCore
import NIOHTTP1

/// The one way to the upstream, for the list service and the forwarded routes alike: a slot from the
/// governor, the request, the slot given back with what came of it, the upstream metrics, and every
/// failure mapped to the gateway's error, with durations on one injected clock. It is also the one place
/// that adds the upstream key to a request.
final class GovernedUpstream: Sendable {
    /// What one governed request came to. Never a failed future: every problem is a result.
    struct Exchange: Sendable {
        /// The upstream's answer (any status), or why there was none.
        var result: Result<UpstreamResponse, GatewayError>
        /// How long the exchange took, from the slot's start; `nil` when the governor refused the request
        /// before it reached the upstream.
        var nanoseconds: UInt64?

        /// Whether the request reached the transport (it may still have failed there).
        var reachedUpstream: Bool { nanoseconds != nil }

        /// The upstream's status, when it answered.
        var status: Int? {
            if case .success(let response) = result { return response.status }
            return nil
        }
    }

    private let client: any UpstreamClient
    private let slots: any UpstreamSlots
    private let clock: any CacheClock
    private let metrics: GatewayMetrics?
    private let key: UpstreamKey
    /// Where failures are logged (also the services' logger).
    let logger: Logger

    init(
        client: any UpstreamClient,
        slots: any UpstreamSlots,
        key: UpstreamKey,
        clock: any CacheClock,
        metrics: GatewayMetrics?,
        logger: Logger
    ) {
        self.key = key
        self.client = client
        self.slots = slots
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
    }

    /// The request sent upstream for `target`: the key, `Accept`, `User-Agent`, the request id, the trace
    /// context (`traceparent` with the gateway's span, and the client's `tracestate`), and for a `POST` its
    /// body and type; nothing else from the client.
    func request(
        method: HTTPMethod = .GET,
        target: String,
        correlation: Correlation?,
        body: ByteBuffer? = nil,
        contentType: String? = nil,
        acceptsGzip: Bool = false
    ) -> UpstreamRequest {
        var headers = HTTPHeaders([
            ("xi-api-key", key.secret.revealed),
            ("Accept", "application/json"),
            ("User-Agent", ListService.userAgent),
        ])
        if let correlation {
            headers.add(name: "X-Request-Id", value: correlation.requestID)
            if let trace = correlation.trace {
                headers.add(name: "traceparent", value: trace.traceparent)
                if let state = correlation.tracestate { headers.add(name: "tracestate", value: state) }
            }
        }
        if method == .POST { headers.add(name: "Content-Type", value: contentType ?? "application/json") }
        // gzip only: the one coding the gateway stores, and unpacks within a bound.
        if acceptsGzip { headers.add(name: "Accept-Encoding", value: "gzip") }
        return UpstreamRequest(
            method: method,
            target: target,
            headers: headers,
            body: method == .POST ? body ?? ByteBuffer() : nil,
            keepsContentCoding: acceptsGzip
        )
    }

    /// Sends `request` once the governor gives a slot; the future completes on `eventLoop`. `context`
    /// goes with the warning logged when the exchange fails (never a header or a body).
    func execute(
        _ request: UpstreamRequest,
        on eventLoop: any EventLoop,
        context: Logger.Metadata = [:]
    ) -> EventLoopFuture<Exchange> {
        slots.acquire(on: eventLoop).flatMap { () -> EventLoopFuture<Exchange> in
            let started = self.clock.nowNanoseconds()
            return self.client.execute(request, on: eventLoop).always { result in
                self.slots.release(self.outcome(of: result))
            }.map { response in
                let elapsed = self.clock.nowNanoseconds() &- started
                self.metrics?.upstream(
                    status: response.status,
                    outcome: response.status == 429 ? .rateLimited : .ok,
                    nanoseconds: elapsed
                )
                return Exchange(result: .success(response), nanoseconds: elapsed)
            }.recover { error in
                let elapsed = self.clock.nowNanoseconds() &- started
                let upstreamError = error as? UpstreamError ?? .invalidResponse("\(error)")
                let outcome: GatewayMetrics.UpstreamOutcome =
                    upstreamError.isTimeout ? .timeout : upstreamError.isBadResponse ? .error : .refused
                self.metrics?.upstream(status: nil, outcome: outcome, nanoseconds: elapsed)
                var metadata = context
                metadata["error"] = "\(upstreamError)"
                self.logger.warning("upstream request failed", metadata: metadata)
                return Exchange(result: .failure(GatewayError(upstreamError)), nanoseconds: elapsed)
            }
        }.recover { error in
            // Only the governor's refusal gets here: the exchange above never fails.
            let rejection = error as? UpstreamGovernor.Rejection ?? .queueFull
            self.metrics?.rejected(rejection)
            return Exchange(result: .failure(GatewayError(rejection)), nanoseconds: nil)
        }
    }

    /// What the governor learns from a result; a 429 is also logged, as the whole key backs off.
    private func outcome(of result: Result<UpstreamResponse, any Error>) -> UpstreamGovernor.Outcome {
        let outcome = UpstreamGovernor.Outcome(result, now: clock.secondsSince1970())
        if case .rateLimited(let retryAfter, let maximum) = outcome {
            logger.warning(
                "upstream answered 429: the key backs off",
                metadata: ["retry_after": "\(retryAfter.map(String.init) ?? "none")", "maximum": "\(maximum ?? 0)"]
            )
        }
        return outcome
    }
}

/// What ties an upstream request to the client request that caused it: the request id (`X-Request-Id`) and
/// the W3C trace context.
public struct Correlation: Sendable {
    /// The client's `X-Request-Id`, or the one the gateway made.
    public var requestID: String
    /// The client's trace, or one made for the request; `nil` sends no `traceparent`.
    public var trace: TraceContext?
    /// The client's `tracestate`, passed on as it came (only with a `traceparent` that was valid).
    public var tracestate: String?

    /// Creates a correlation.
    public init(requestID: String, trace: TraceContext? = nil, tracestate: String? = nil) {
        self.requestID = requestID
        self.trace = trace
        self.tracestate = tracestate
    }

    /// Whether `value` may be passed on as `tracestate`: at most 512 bytes of visible ASCII, spaces and
    /// tabs (the specification's limit and character set; a larger one may be dropped whole).
    public static func isPassableTracestate(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 512
            && value.utf8.allSatisfy { ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x09 }
    }
}
