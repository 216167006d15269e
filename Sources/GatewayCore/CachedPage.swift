import NIOCore
import Synchronization

/// A stored upstream answer: its bytes in one form (gzip, or identity with `COMPRESSION=off`), when they
/// arrived, and the header lines each form's answers send, encoded once.
public struct CachedPage: Sendable {
    /// The stored bytes, coded as ``coding`` says: what a client that takes this coding gets as they are.
    public let body: ByteBuffer
    /// How ``body`` is coded.
    public let coding: ContentCoding
    /// The size of the identity form (the JSON), which `HEAD` names for a client that takes no gzip.
    public let identityByteCount: Int
    /// Unique to this page in this process: names its identity form in ``IdentityForms``.
    public let serial: UInt64
    /// Seconds since 1970 when the upstream answered: `Last-Modified`.
    public let modifiedAt: Int
    /// ``CacheClock/nowNanoseconds()`` when the upstream's answer arrived.
    public var storedAt: UInt64
    /// Whether the last attempt to refresh this page (once stale) failed, so serving it is stale-if-error.
    public var revalidationFailed = false

    /// Both forms' header lines, one after the other: `Content-Type`, (`Content-Encoding`), then the
    /// validators a `304` repeats: `ETag`, `Last-Modified` (`Vary` is the writer's: every list answer has
    /// it, pages or not). One buffer, so a hit copies one
    /// reference for them; the type is kept only here, since each reference a hit copies is one more count
    /// to change on memory both event loops share.
    private let lines: ByteBuffer
    /// Where each form's lines and its validators start in ``lines``: identity, its validators, gzip, its
    /// validators, end.
    private let marks: (UInt32, UInt32, UInt32, UInt32, UInt32)

    private static let serials = Atomic<UInt64>(0)

    /// Creates a page whose stored bytes are `body`, coded as `coding`; `identityByteCount`: the size of the
    /// identity form. `Content-Type` is left out when `contentType` is not allowed in a header (a control
    /// character could start a header of its own). The entity tags are SHA-256 of the stored bytes, so
    /// replicas storing the same bytes tag them alike.
    public init(
        body: ByteBuffer,
        coding: ContentCoding,
        identityByteCount: Int,
        contentType: String,
        storedAt: UInt64,
        modifiedAt: Int
    ) {
        self.body = body
        self.coding = coding
        self.identityByteCount = identityByteCount
        self.storedAt = storedAt
        self.modifiedAt = modifiedAt
        self.serial = Self.serials.add(1, ordering: .relaxed).newValue
        let digest = SHA256.hash(body.readableBytesView).prefix(16)
        var tag = ""
        for byte in digest {
            tag += String(byte >> 4, radix: 16)
            tag += String(byte & 0x0F, radix: 16)
        }
        let type = HeaderField.isValue(contentType) ? "Content-Type: \(contentType)\r\n" : ""
        let date = "Last-Modified: \(HTTPDate.format(modifiedAt))\r\n"
        var text = type
        let identityValidators = text.utf8.count
        text += "ETag: \"\(tag)\"\r\n\(date)"
        let gzipStart = text.utf8.count
        if coding == .gzip { text += "\(type)Content-Encoding: gzip\r\n" }
        let gzipValidators = text.utf8.count
        if coding == .gzip { text += "ETag: \"\(tag)-gzip\"\r\n\(date)" }
        // Made at its exact size: a page's lines are kept as long as the page.
        let lines = ByteBuffer(string: text)
        self.lines = lines
        self.marks = (
            0, UInt32(identityValidators), UInt32(gzipStart), UInt32(gzipValidators), UInt32(lines.writerIndex)
        )
    }

    /// An identity page (as stored with `COMPRESSION=off`), last modified at `modifiedAt`.
    public init(body: ByteBuffer, contentType: String, storedAt: UInt64, modifiedAt: Int? = nil) {
        self.init(
            body: body,
            coding: .identity,
            identityByteCount: body.readableBytes,
            contentType: contentType,
            storedAt: storedAt,
            modifiedAt: modifiedAt ?? SystemCacheClock().secondsSince1970()
        )
    }

    /// The form a client gets: gzip when it takes gzip and the page is stored so.
    @inlinable
    public func coding(acceptingGzip: Bool) -> ContentCoding {
        acceptingGzip && coding == .gzip ? .gzip : .identity
    }

    /// The header lines of an answer with the `form` of this page: all of them for a `200`, only the
    /// validators for a `304`.
    public func headerLines(for form: ContentCoding, notModified: Bool = false) -> ByteBuffer {
        let (start, end): (UInt32, UInt32)
        switch (form, notModified) {
        case (.identity, false): (start, end) = (marks.0, marks.2)
        case (.identity, true): (start, end) = (marks.1, marks.2)
        case (.gzip, false): (start, end) = (marks.2, marks.4)
        case (.gzip, true): (start, end) = (marks.3, marks.4)
        }
        return lines.getSlice(at: lines.readerIndex + Int(start), length: Int(end - start)) ?? ByteBuffer()
    }

    /// The identity form's header lines (`Content-Type` and its validators).
    public var headerLines: ByteBuffer { headerLines(for: .identity) }

    /// The `form`'s entity tag, quotes included, e.g. `"3f2a…"`.
    public func entityTag(for form: ContentCoding) -> Substring {
        let validators = headerLines(for: form == .gzip && coding == .gzip ? .gzip : .identity, notModified: true)
        let text = String(buffer: validators)
        guard let line = text.split(separator: "\r\n").first, line.hasPrefix("ETag: ") else { return "" }
        return line.dropFirst("ETag: ".count)
    }

    /// The bytes this page takes in memory beyond its key: the stored form and its header lines.
    public var byteCount: Int { body.readableBytes + lines.readableBytes }

    /// The upstream's `Content-Type` as hits send it; empty when it was not allowed in a header (hits then
    /// send none).
    public var contentType: String {
        let prefix = "Content-Type: "
        let text = String(buffer: headerLines(for: .identity))
        guard text.hasPrefix(prefix), let end = text.firstRange(of: "\r\n") else { return "" }
        return String(text[text.index(text.startIndex, offsetBy: prefix.count)..<end.lowerBound])
    }
}

/// The identity forms of gzip pages that identity clients asked for lately, kept per thread so that such a
/// client does not pay an unpack on every hit: at most ``capacity`` pages per thread, each at most
/// ``largestKept`` bytes unpacked (larger ones are unpacked for each answer).
public final class IdentityForms: Sendable {
    /// Pages kept per thread.
    public let capacity: Int
    /// The largest identity form kept.
    public static let largestKept = 64 * 1024
    private let memo: BoundedMemo<UInt64, ByteBuffer>

    /// Keeps at most `capacity` identity forms per thread.
    public init(capacity: Int = 256) {
        self.capacity = capacity
        self.memo = BoundedMemo(capacity: capacity)
    }

    /// `page`'s identity form; `nil` only if its stored gzip does not unpack to the size it was stored with
    /// (it was unpacked once and checked before it was stored, so that means memory was damaged).
    public func identity(of page: CachedPage) -> ByteBuffer? {
        guard page.coding == .gzip else { return page.body }
        if let known = memo.value(for: page.serial) { return known }
        let unpacked = try? page.body.withUnsafeReadableBytes { bytes in
            try Gzip.decompress(bytes, limit: page.identityByteCount)
        }
        guard let unpacked, unpacked.count == page.identityByteCount else { return nil }
        let identity = ByteBuffer(bytes: unpacked)
        if identity.readableBytes <= Self.largestKept { memo.remember(identity, for: page.serial) }
        return identity
    }

    /// Identity forms kept on every thread together.
    public var count: Int { memo.count }
}
