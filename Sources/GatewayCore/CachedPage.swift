import NIOCore
import NIOHTTP1

/// A stored upstream answer: the exact bytes received, and when they arrived.
public struct CachedPage: Sendable {
    /// The body as the upstream sent it.
    public var body: ByteBuffer
    /// The headers every hit on this page sends: the upstream's `Content-Type`. Made once, when the page
    /// is stored: a hit neither builds them nor shares one set with every other page (whose reference
    /// count every event loop would then write on every hit).
    public let headers: HTTPHeaders
    /// ``CacheClock/nowNanoseconds()`` when the upstream's answer arrived.
    public var storedAt: UInt64
    /// Whether the last attempt to refresh this page (once stale) failed, so serving it is stale-if-error.
    public var revalidationFailed = false

    /// Creates a page.
    public init(body: ByteBuffer, contentType: String, storedAt: UInt64) {
        self.body = body
        self.headers = HTTPHeaders([("Content-Type", contentType)])
        self.storedAt = storedAt
    }

    /// The upstream's `Content-Type`.
    public var contentType: String { headers.first(name: "content-type") ?? "" }
}
