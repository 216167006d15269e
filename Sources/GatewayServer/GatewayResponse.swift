import NIOCore
import NIOHTTP1

/// A complete response, ready to write: the gateway's answers are always whole (bodies are small and
/// cached pages are already in memory).
public struct GatewayResponse: Sendable {
    /// The status.
    public var status: HTTPResponseStatus
    /// Every header but `Content-Length` and `Connection`, which the writer sets.
    public var headers: HTTPHeaders
    /// The body (also measured for `HEAD`, which sends none).
    public var body: ByteBuffer

    /// Creates a response.
    public init(status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders(), body: ByteBuffer) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}
