import NIOCore

/// A stored upstream answer: the exact bytes received, and when they arrived.
public struct CachedPage: Sendable {
    /// The body as the upstream sent it.
    public var body: ByteBuffer
    /// The upstream's `Content-Type`.
    public let contentType: String
    /// The header lines every hit on this page sends (its `Content-Type`), encoded and checked once, when
    /// the page is stored: a hit copies them as they are. Empty when the upstream's `Content-Type` is not
    /// allowed in a header (a control character could start a header of its own).
    public let headerLines: ByteBuffer
    /// ``CacheClock/nowNanoseconds()`` when the upstream's answer arrived.
    public var storedAt: UInt64
    /// Whether the last attempt to refresh this page (once stale) failed, so serving it is stale-if-error.
    public var revalidationFailed = false

    /// Creates a page.
    public init(body: ByteBuffer, contentType: String, storedAt: UInt64) {
        self.body = body
        self.contentType = contentType
        self.headerLines =
            HeaderField.isValue(contentType) ? ByteBuffer(string: "Content-Type: \(contentType)\r\n") : ByteBuffer()
        self.storedAt = storedAt
    }
}
