import GatewayCore
import NIOCore
import NIOHTTP1

/// Every error the gateway answers itself. This is the one place where errors become HTTP responses.
public struct GatewayError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable {
        case invalidQuery([ValidationIssue])
        case malformedQuery(FormDecoder.Failure)
        case notFound
        case methodNotAllowed(allow: String)
        case unauthorized
        case notReady
        case invalidAPIKey
        case teamBudgetSpent(retryAfterSeconds: Int)
        case badRequest(String)
        case headersTooLarge
        case bodyTooLarge
        case expectationFailed
        case upstreamUnavailable
        case upstreamTimeout
        case badUpstreamResponse
        case upstreamBusy
        case upstreamBackoff(secondsLeft: Int)
        case notCached
        case hostNotDirect
    }

    private let code: Code

    private init(_ code: Code) { self.code = code }

    /// The query failed the schema: 422 with FastAPI's body.
    public static func invalidQuery(_ issues: [ValidationIssue]) -> Self { Self(.invalidQuery(issues)) }
    /// The query could not be decoded: 400.
    public static func malformedQuery(_ failure: FormDecoder.Failure) -> Self { Self(.malformedQuery(failure)) }
    /// No such path: 404.
    public static let notFound = Self(.notFound)
    /// A method other than GET or HEAD on the list path: 405.
    public static let methodNotAllowed = Self(.methodNotAllowed(allow: "GET, HEAD"))
    /// A method the path does not take: 405, with the ones it takes.
    public static func methodNotAllowed(allow: String) -> Self { Self(.methodNotAllowed(allow: allow)) }
    /// An admin request without the right token: 401.
    public static let unauthorized = Self(.unauthorized)
    /// A request without a known team token while `CLIENTS_FILE` is set: 401, in the upstream's shape.
    public static let invalidAPIKey = Self(.invalidAPIKey)
    /// The team's upstream budget is spent and no stale page can stand in: 429.
    public static func teamBudgetSpent(retryAfterSeconds: Int) -> Self {
        Self(.teamBudgetSpent(retryAfterSeconds: retryAfterSeconds))
    }
    /// The gateway is shutting down: 503 from `/readyz`.
    public static let notReady = Self(.notReady)
    /// Not HTTP the gateway serves: 400.
    public static func badRequest(_ reason: String) -> Self { Self(.badRequest(reason)) }
    /// The request head is over the limit: 431.
    public static let headersTooLarge = Self(.headersTooLarge)
    /// A request body over the limit: 413.
    public static let bodyTooLarge = Self(.bodyTooLarge)
    /// An `Expect` other than one `100-continue` (417); the connection closes.
    public static let expectationFailed = Self(.expectationFailed)
    /// The upstream refused, reset or could not be reached: 502.
    public static let upstreamUnavailable = Self(.upstreamUnavailable)
    /// The upstream did not answer in time: 504.
    public static let upstreamTimeout = Self(.upstreamTimeout)
    /// The upstream answered something unusable: 502.
    public static let badUpstreamResponse = Self(.badUpstreamResponse)

    /// `Cache-Control: only-if-cached` and no page the client takes is in the cache: 504, the upstream not
    /// asked.
    public static let notCached = Self(.notCached)

    /// The status page or its figures asked for by a name in `Host` rather than an address or `localhost`:
    /// 403 (what a DNS-rebinding page in an operator's browser would send).
    public static let hostNotDirect = Self(.hostNotDirect)

    /// Too many requests wait for the upstream already, or one waited too long for a slot: 503.
    public static let upstreamBusy = Self(.upstreamBusy)
    /// The upstream said 429 and the whole key is backing off for `secondsLeft` more seconds: 429.
    public static func upstreamBackoff(secondsLeft: Int) -> Self { Self(.upstreamBackoff(secondsLeft: secondsLeft)) }

    /// The error a refusal by the governor becomes.
    public init(_ rejection: UpstreamGovernor.Rejection) {
        switch rejection {
        case .queueFull, .queueTimeout: self = .upstreamBusy
        case .backingOff(let secondsLeft): self = .upstreamBackoff(secondsLeft: secondsLeft)
        }
    }

    /// The error an upstream failure becomes.
    public init(_ error: UpstreamError) {
        if error.isTimeout {
            self = .upstreamTimeout
        } else if error.isBadResponse {
            self = .badUpstreamResponse
        } else {
            self = .upstreamUnavailable
        }
    }

    /// Whether the connection must close after this answer (the request stream can no longer be trusted).
    public var closesConnection: Bool {
        switch code {
        case .badRequest, .headersTooLarge, .bodyTooLarge, .expectationFailed: return true
        default: return false
        }
    }

    /// A short, bounded label for logs and the `Cache-Status` detail.
    public var shortDescription: String {
        switch code {
        case .invalidQuery: return "invalid-query"
        case .malformedQuery: return "malformed-query"
        case .notFound: return "not-found"
        case .methodNotAllowed: return "method-not-allowed"
        case .unauthorized: return "unauthorized"
        case .notReady: return "not-ready"
        case .invalidAPIKey: return "invalid-api-key"
        case .teamBudgetSpent: return "team-budget-spent"
        case .badRequest: return "bad-request"
        case .headersTooLarge: return "headers-too-large"
        case .bodyTooLarge: return "body-too-large"
        case .expectationFailed: return "expectation-failed"
        case .upstreamUnavailable: return "upstream-unavailable"
        case .upstreamTimeout: return "upstream-timeout"
        case .badUpstreamResponse: return "bad-upstream-response"
        case .upstreamBusy: return "upstream-busy"
        case .upstreamBackoff: return "upstream-backoff"
        case .notCached: return "not-cached"
        case .hostNotDirect: return "host-not-direct"
        }
    }

    public var description: String { shortDescription }

    /// The response: status, JSON body in the upstream's style, and the headers this error needs.
    public func response(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> GatewayResponse {
        let status: HTTPResponseStatus
        let body: String
        var headers = HTTPHeaders([("Content-Type", "application/json")])
        switch code {
        case .invalidQuery(let issues):
            status = .unprocessableEntity
            body = ValidationIssue.body(for: issues)
        case .malformedQuery(let failure):
            status = .badRequest
            body = ErrorBody.json(status: "invalid_query_encoding", message: failure.description)
        case .notFound:
            status = .notFound
            body = ErrorBody.json(status: "not_found", message: "Not Found")
        case .methodNotAllowed(let allow):
            status = .methodNotAllowed
            body = ErrorBody.json(status: "method_not_allowed", message: "Method Not Allowed")
            headers.add(name: "Allow", value: allow)
        case .unauthorized:
            status = .unauthorized
            body = ErrorBody.json(status: "unauthorized", message: "a valid admin token is required")
            headers.add(name: "WWW-Authenticate", value: "Bearer")
        case .invalidAPIKey:
            status = .unauthorized
            body = ErrorBody.json(status: "invalid_api_key", message: "Invalid API key")
        case .teamBudgetSpent(let retryAfter):
            status = .tooManyRequests
            body = ErrorBody.json(
                status: "rate_limit_exceeded",
                message: "this team's upstream budget is spent; retry after \(retryAfter) seconds"
            )
            headers.add(name: "Retry-After", value: String(max(1, retryAfter)))
        case .notReady:
            status = .serviceUnavailable
            body = ErrorBody.json(status: "not_ready", message: "the gateway is shutting down")
        case .badRequest(let reason):
            status = .badRequest
            body = ErrorBody.json(status: "bad_request", message: reason)
        case .headersTooLarge:
            status = .requestHeaderFieldsTooLarge
            body = ErrorBody.json(status: "request_header_fields_too_large", message: "the request head is too large")
        case .bodyTooLarge:
            status = .payloadTooLarge
            body = ErrorBody.json(status: "payload_too_large", message: "the request body is too large")
        case .expectationFailed:
            status = .expectationFailed
            body = ErrorBody.json(status: "expectation_failed", message: "only Expect: 100-continue is supported")
        case .upstreamUnavailable:
            status = .badGateway
            body = ErrorBody.json(status: "upstream_unavailable", message: "the upstream could not be reached")
        case .upstreamTimeout:
            status = .gatewayTimeout
            body = ErrorBody.json(status: "upstream_timeout", message: "the upstream did not answer in time")
        case .badUpstreamResponse:
            status = .badGateway
            body = ErrorBody.json(status: "bad_upstream_response", message: "the upstream's answer was not usable")
        case .upstreamBusy:
            status = .serviceUnavailable
            body = ErrorBody.json(status: "system_busy", message: "too many requests are waiting for the upstream")
            headers.add(name: "Retry-After", value: "1")
        case .upstreamBackoff(let secondsLeft):
            status = .tooManyRequests
            body = ErrorBody.json(
                status: "rate_limit_exceeded",
                message: "the upstream is rate limiting this gateway; retry after \(secondsLeft) seconds"
            )
            headers.add(name: "Retry-After", value: String(max(1, secondsLeft)))
        case .notCached:
            status = .gatewayTimeout
            body = ErrorBody.json(
                status: "not_cached",
                message: "Cache-Control: only-if-cached, and the cache holds no page this request takes"
            )
        case .hostNotDirect:
            status = .forbidden
            body = ErrorBody.json(
                status: "host_not_direct",
                message: "the status page answers to an IP address or localhost in Host only: open it by address "
                    + "or through a port-forward"
            )
        }
        return GatewayResponse(status: status, headers: headers, body: allocator.buffer(string: body))
    }
}
