import NIOCore

/// A stored upstream answer: the exact bytes received, and when they arrived.
public struct CachedPage: Sendable {
    /// The body as the upstream sent it.
    public var body: ByteBuffer
    /// The header lines every hit on this page sends (its `Content-Type`), encoded and checked once, when
    /// the page is stored: a hit copies them as they are. Empty when the upstream's `Content-Type` is not
    /// allowed in a header (a control character could start a header of its own).
    ///
    /// The type is kept only here, not also as a `String`: a hit copies the page out of the cache, and
    /// each reference it holds is one more reference count to change on memory both event loops share.
    public let headerLines: ByteBuffer
    /// ``CacheClock/nowNanoseconds()`` when the upstream's answer arrived.
    public var storedAt: UInt64
    /// Whether the last attempt to refresh this page (once stale) failed, so serving it is stale-if-error.
    public var revalidationFailed = false

    /// Creates a page.
    public init(body: ByteBuffer, contentType: String, storedAt: UInt64) {
        self.body = body
        self.headerLines =
            HeaderField.isValue(contentType)
            ? ByteBuffer(string: "\(Self.headerPrefix)\(contentType)\r\n") : ByteBuffer()
        self.storedAt = storedAt
    }

    private static let headerPrefix = "Content-Type: "

    /// The upstream's `Content-Type` as hits send it; empty when it was not allowed in a header (hits then
    /// send none).
    public var contentType: String {
        let valueBytes = headerLines.readableBytes - Self.headerPrefix.utf8.count - 2
        guard valueBytes >= 0 else { return "" }
        return headerLines.getString(
            at: headerLines.readerIndex + Self.headerPrefix.utf8.count,
            length: valueBytes
        ) ?? ""
    }
}
