import GatewayCore
import Logging
import NIOCore
import NIOHTTP1

/// The access log line and the metrics of each answered request on one connection: what the request was
/// (noted as it begins, by ``Responder``), and what its answer was (noted as it is written).
///
/// Owned by one ``HTTPHandler``, on its event loop. It keeps the context's metrics and the access log's own
/// handler, used in place rather than read from the shared context on every request, and the client's
/// address as the log writes it, made once.
struct RequestRecorder {
    /// What the access log and the metrics need of the request being answered.
    private struct Current {
        var method: String
        /// The request target (written to the log by ``AccessLogTarget``, which masks what may be secret).
        var uri: String
        var route: GatewayMetrics.RouteLabel
        var requestID: String
        var started: NIODeadline
        var team: String?
        /// The request's trace, for an API request.
        var trace: TraceContext? = nil
        /// Whether this request gets an access log line (read once, with the settings, as it begins).
        var logged: Bool
        /// Why it was refused before reaching a route, if it was.
        var refusal: RefusalReason? = nil
    }

    private let context: ServerContext
    /// The context's metrics, kept by the connection so that using them does not retain an object every
    /// event loop shares.
    private let metrics: GatewayMetrics?
    /// The access log's handler when it writes lines itself (``ServerContext/accessLogHandler``), kept by
    /// the connection: used in place, not copied out of the shared context on every request.
    private let accessLogHandler: GatewayLogHandler?
    /// The client's address as the access log writes it, made on first use.
    private var clientAddress: String?
    private var current: Current?

    /// A recorder writing to `context`'s access log and metrics.
    init(context: ServerContext) {
        self.context = context
        self.metrics = context.metrics
        self.accessLogHandler = context.accessLogHandler
    }

    /// The id of the request being answered, if one is.
    var requestID: String? { current?.requestID }

    /// A request reached `route` (as its metrics name it) at `started`.
    mutating func begin(
        _ head: RequestHead,
        route: GatewayMetrics.RouteLabel,
        requestID: String,
        started: NIODeadline,
        logged: Bool
    ) {
        current = Current(
            method: head.method.rawValue,
            uri: head.uri,
            route: route,
            requestID: requestID,
            started: started,
            team: nil,
            logged: logged
        )
    }

    /// The request being answered belongs to `trace`.
    mutating func noteTrace(_ trace: TraceContext?) {
        current?.trace = trace
    }

    /// The request being answered comes from `team` (`nil` while the gateway is open).
    mutating func noteTeam(_ team: String?) {
        current?.team = team
    }

    /// A request was refused for `reason` before it reached a route: it is logged with its method when it
    /// was read (`nil`: `-`), never its target or anything else it sent.
    mutating func beginRefusal(
        _ reason: RefusalReason,
        method: String?,
        requestID: String,
        started: NIODeadline,
        logged: Bool
    ) {
        current = Current(
            method: method ?? "-",
            uri: "-",
            route: .other,
            requestID: requestID,
            started: started,
            team: nil,
            logged: logged,
            refusal: reason
        )
    }

    /// The request being answered, if any, was answered with `response` at `now`: counts it, and logs it.
    /// `client` is asked for once per connection, when the first line is written.
    mutating func finish(_ response: GatewayResponse, now: NIODeadline, client: @autoclosure () -> SocketAddress?) {
        guard let request = current.take() else { return }
        let elapsed = UInt64(max(0, (now - request.started).nanoseconds))
        let status = Int(response.status.code)
        metrics?.request(
            route: request.route,
            status: status,
            cache: response.trace.cache,
            nanoseconds: elapsed
        )
        if let team = request.team { metrics?.team(team, trace: response.trace) }
        if let refusal = request.refusal { metrics?.refused(refusal) }
        guard request.logged else { return }
        if clientAddress == nil { clientAddress = client()?.ipAddress ?? "-" }
        let entry = AccessLogEntry(
            requestID: request.requestID,
            client: clientAddress ?? "-",
            method: request.method,
            path: AccessLogTarget.logged(request.uri, route: request.route),
            status: status,
            cache: response.trace.cache.rawValue,
            nanoseconds: elapsed,
            bytes: response.body.readableBytes,
            team: request.team,
            upstreamStatus: response.trace.upstreamStatus,
            upstreamNanoseconds: response.trace.upstreamNanoseconds,
            reason: request.refusal?.rawValue,
            traceID: request.trace?.traceID
        )
        if accessLogHandler != nil {
            accessLogHandler?.logAccess(entry)
        } else {
            context.accessLogger.info(AccessLogEntry.message, metadata: entry.metadata)
        }
    }
}
