import NIOCore

/// A stored upstream answer: the exact bytes received, and when they arrived.
public struct CachedPage: Sendable {
    /// The body as the upstream sent it.
    public var body: ByteBuffer
    /// The upstream's `Content-Type`.
    public var contentType: String
    /// ``CacheClock/nowNanoseconds()`` when the upstream's answer arrived.
    public var storedAt: UInt64
    /// Whether the last attempt to refresh this page (once stale) failed, so serving it is stale-if-error.
    public var revalidationFailed = false

    /// Creates a page.
    public init(body: ByteBuffer, contentType: String, storedAt: UInt64) {
        self.body = body
        self.contentType = contentType
        self.storedAt = storedAt
    }
}
