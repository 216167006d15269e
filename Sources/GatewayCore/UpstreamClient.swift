import NIOCore
import NIOHTTP1

/// A request for the upstream: the path and query to ask for, and the headers to send.
public struct UpstreamRequest: Sendable {
    /// `GET` or `POST`.
    public var method: HTTPMethod
    /// Origin-form target relative to the upstream's base URL, e.g. `/v1/convai/test-invocations?page_size=30`.
    public var target: String
    /// Every header to send; nothing else is added but what the transport itself needs.
    public var headers: HTTPHeaders
    /// The body of a `POST`.
    public var body: ByteBuffer?
    /// The answer's body is kept as it came, in the content coding its `Content-Encoding` names (the
    /// request's own `Accept-Encoding` in `headers` says which it takes); otherwise the client asks for
    /// every coding it can decode and decodes the body.
    public var keepsContentCoding: Bool

    /// Creates a request.
    public init(
        method: HTTPMethod = .GET,
        target: String,
        headers: HTTPHeaders,
        body: ByteBuffer? = nil,
        keepsContentCoding: Bool = false
    ) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keepsContentCoding = keepsContentCoding
    }
}

/// A complete upstream answer, whatever its status.
public struct UpstreamResponse: Sendable {
    /// The HTTP status code.
    public var status: Int
    /// The response headers of the final response.
    public var headers: HTTPHeaders
    /// The whole body: decoded from any content coding, unless the request kept it
    /// (``UpstreamRequest/keepsContentCoding``).
    public var body: ByteBuffer

    /// Creates a response.
    public init(status: Int, headers: HTTPHeaders, body: ByteBuffer) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Why no upstream answer could be had.
public struct UpstreamError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case connectFailed
        case timedOut
        case connectionReset
        case invalidResponse
        case responseTooLarge
        case shutDown
    }

    private let code: Code
    /// Detail for logs (the transport's own words); never shown to clients.
    public let detail: String

    private init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The upstream could not be reached (refused, unresolvable, TLS failure).
    public static func connectFailed(_ detail: String = "") -> Self { Self(.connectFailed, detail) }
    /// The upstream did not answer in time.
    public static func timedOut(_ detail: String = "") -> Self { Self(.timedOut, detail) }
    /// The connection broke before a whole answer arrived.
    public static func connectionReset(_ detail: String = "") -> Self { Self(.connectionReset, detail) }
    /// The answer was not valid HTTP, or not what was expected.
    public static func invalidResponse(_ detail: String = "") -> Self { Self(.invalidResponse, detail) }
    /// The answer was larger than the client accepts.
    public static func responseTooLarge(_ detail: String = "") -> Self { Self(.responseTooLarge, detail) }
    /// The client was shut down before the request finished.
    public static func shutDown(_ detail: String = "") -> Self { Self(.shutDown, detail) }

    /// Whether this was a timeout (504) rather than a failed exchange (502).
    public var isTimeout: Bool { code == .timedOut }

    /// Whether the upstream answered, but with something unusable (502 rather than "unreachable").
    public var isBadResponse: Bool { code == .invalidResponse || code == .responseTooLarge }

    /// A short, bounded label, for metrics and log fields.
    public var shortDescription: String {
        switch code {
        case .connectFailed: return "connect-failed"
        case .timedOut: return "timeout"
        case .connectionReset: return "connection-reset"
        case .invalidResponse: return "invalid-response"
        case .responseTooLarge: return "response-too-large"
        case .shutDown: return "shut-down"
        }
    }

    public var description: String {
        detail.isEmpty ? shortDescription : "\(shortDescription): \(detail)"
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

/// Sends requests to the upstream. The server talks to the upstream only through this, so each side can
/// be tested against a fake of the other.
public protocol UpstreamClient: Sendable {
    /// Sends `request`; the future completes on `eventLoop` with the answer or an ``UpstreamError``.
    func execute(_ request: UpstreamRequest, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamResponse>
}
