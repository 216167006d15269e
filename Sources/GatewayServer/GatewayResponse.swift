import GatewayCore
import NIOCore
import NIOHTTP1

/// A complete response, ready to write: the gateway's answers are always whole (bodies are small and
/// cached pages are already in memory).
public struct GatewayResponse: Sendable {
    /// The status.
    public var status: HTTPResponseStatus
    /// Every header but `Cache-Status`, `Age` (below), `Content-Length` and `Connection` (the writer's).
    public var headers: HTTPHeaders
    /// Header lines already encoded and checked (a cached page's ``CachedPage/headerLines``), written
    /// before `headers`.
    public var headerLines: ByteBuffer?
    /// `Cache-Status` (RFC 9211): what the cache did; on every answer on the list path.
    public var cacheStatus: CacheStatus?
    /// `Age`, in seconds: how long ago the upstream gave the page.
    public var age: Int?
    /// The team's upstream budget, for `RateLimit-Policy` and `RateLimit` (answers to a team with one).
    public var rateLimit: BudgetState?
    /// `Vary: Accept-Encoding`: on every list answer while pages are served in two forms (`COMPRESSION`).
    public var variesByEncoding = false
    /// The body (also measured for `HEAD`, which sends none).
    public var body: ByteBuffer
    /// What happened on the way, for the access log and metrics; never sent.
    public var trace = ResponseTrace()

    /// Creates a response.
    public init(status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders(), body: ByteBuffer) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

extension GatewayResponse {
    /// Headers of an upstream answer worth passing on besides its type: what tells a client when to retry.
    static let passedHeaders = ["retry-after", "current-concurrent-requests", "maximum-concurrent-requests"]

    /// An upstream answer passed on as it came: status, body, `Content-Type` and ``passedHeaders``; no other
    /// upstream header reaches the client.
    init(passingOn response: UpstreamResponse) {
        var headers = HTTPHeaders([("Content-Type", response.headers.first(name: "content-type") ?? "application/json")]
        )
        for name in Self.passedHeaders {
            for value in response.headers[name] { headers.add(name: name, value: value) }
        }
        self.init(status: HTTPResponseStatus(statusCode: response.status), headers: headers, body: response.body)
    }
}

/// What the gateway did for one answer: what the cache said, and the upstream exchange if there was one.
public struct ResponseTrace: Sendable, Hashable {
    /// The cache's part, as the access log and the metrics name it (a bounded set).
    public enum CacheResult: String, Sendable, Hashable, CaseIterable {
        /// A fresh page.
        case hit
        /// A stale page (while revalidating, or instead of an error).
        case stale
        /// This request asked the upstream.
        case miss
        /// This request shared another's upstream request.
        case coalesced
        /// The cache had no part (refusals, operations endpoints).
        case none
    }

    public var cache: CacheResult = .none
    /// The upstream's status, when an upstream answer was used.
    public var upstreamStatus: Int?
    /// How long the upstream exchange took (for a collapsed request, the shared one's).
    public var upstreamNanoseconds: UInt64?
    /// This request caused an upstream request (a miss it led, a refresh it started, a forwarded write).
    public var causedUpstreamRequest = false
    /// The team's budget refused the upstream request this request would have caused.
    public var budgetRefused = false

    public init() {}
}
