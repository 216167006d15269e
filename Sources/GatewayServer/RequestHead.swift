import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A request's head as ``RequestReader`` read it: its request line as values, and its field lines as they
/// arrived.
///
/// The field lines stay in the bytes the connection read (a slice, not a copy). The few fields the gateway
/// reads are looked up in them when asked for, so a head costs no header array and no string per field.
/// Every line was checked before the head was made.
///
/// So a head keeps the bytes it was read from: what waits (for the upstream, say) keeps what it needs of
/// the head, not the head.
struct RequestHead {
    var method: HTTPMethod
    /// The request target as received.
    var uri: String
    var version: HTTPVersion
    /// Whether the connection may stay open after the answer, as NIO's `HTTPRequestHead.isKeepAlive`
    /// decides it: the version's default unless `Connection` lists `close` or `keep-alive` (a second
    /// verdict, even the same one, means close).
    var isKeepAlive: Bool
    /// Whether the head has a `Host` field (the reader refuses a second one). An HTTP/1.1 request without
    /// one is refused by the handler (RFC 9112, 3.2).
    var hasHost = false
    /// What `Expect` asks for.
    var expectation = Expectation.none
    /// The body's length as `Content-Length` declares it; `nil` without one (no body, or chunked).
    var contentLength: Int?
    /// The field lines, each ending in CR LF; no empty line.
    private let fieldLines: ByteBuffer

    /// What a request's `Expect` field asks of the server (RFC 9110, 10.1.1).
    enum Expectation: Equatable {
        case none
        /// `100-continue`: the client waits for `100 Continue` (or a final answer) before sending its body.
        case `continue`
        /// Anything else, a list, or more than one field: answered `417`.
        case unsupported
    }

    init(method: HTTPMethod, uri: String, version: HTTPVersion, isKeepAlive: Bool, fieldLines: ByteBuffer) {
        self.method = method
        self.uri = uri
        self.version = version
        self.isKeepAlive = isKeepAlive
        self.fieldLines = fieldLines
    }

    /// The first value of the field `name` (lowercase ASCII; matched ignoring case), without the whitespace
    /// around it; `nil` when the head has no such field.
    func first(name: StaticString) -> String? {
        var found: String?
        forEachField { fieldName, value in
            guard HeadBytes.equalsIgnoringCase(fieldName, name) else { return true }
            found = String(decoding: value, as: UTF8.self)
            return false
        }
        return found
    }

    /// Every value of the list field `name` (lowercase ASCII; matched ignoring case), in order, joined with
    /// `,` as RFC 9110 section 5.3 combines field lines; `nil` when the head has no such field.
    func joined(name: StaticString) -> String? {
        var found: String?
        forEachField { fieldName, value in
            guard HeadBytes.equalsIgnoringCase(fieldName, name) else { return true }
            let text = String(decoding: value, as: UTF8.self)
            found = found.map { $0 + "," + text } ?? text
            return true
        }
        return found
    }

    /// The fields an API request's answer reads, found in one pass over the head (a hit reads most of
    /// them, and a pass per field was most of what reading them cost).
    func fields() -> RequestFields {
        var fields = RequestFields()
        forEachField { name, value in
            func text() -> String { String(decoding: value, as: UTF8.self) }
            func join(_ existing: String?) -> String { existing.map { $0 + "," + text() } ?? text() }
            switch name.count {
            case 10:
                if HeadBytes.equalsIgnoringCase(name, "xi-api-key") {
                    if fields.apiKey == nil { fields.apiKey = text() }
                } else if HeadBytes.equalsIgnoringCase(name, "tracestate") {
                    fields.tracestate = join(fields.tracestate)
                }
            case 11:
                if fields.traceparent == nil, HeadBytes.equalsIgnoringCase(name, "traceparent") {
                    fields.traceparent = text()
                }
            case 12:
                if fields.requestID == nil, HeadBytes.equalsIgnoringCase(name, "x-request-id") {
                    fields.requestID = text()
                }
            case 13:
                if HeadBytes.equalsIgnoringCase(name, "cache-control") {
                    fields.cacheControl = join(fields.cacheControl)
                } else if HeadBytes.equalsIgnoringCase(name, "if-none-match") {
                    fields.ifNoneMatch = join(fields.ifNoneMatch)
                } else if fields.authorization == nil, HeadBytes.equalsIgnoringCase(name, "authorization") {
                    fields.authorization = text()
                }
            case 15:
                if HeadBytes.equalsIgnoringCase(name, "accept-encoding") {
                    fields.acceptEncoding = join(fields.acceptEncoding)
                }
            case 17:
                // Joined: two lines are a list, which is not an HTTP-date, and so ignored (RFC 9110, 13.1.3).
                if HeadBytes.equalsIgnoringCase(name, "if-modified-since") {
                    fields.ifModifiedSince = join(fields.ifModifiedSince)
                }
            default:
                break
            }
            return true
        }
        return fields
    }

    /// Every field, in order, as NIO's `HTTPHeaders`.
    var headers: HTTPHeaders {
        var headers = HTTPHeaders()
        forEachField { name, value in
            headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
            return true
        }
        return headers
    }

    /// The head as NIO's `HTTPRequestHead`.
    var nioHead: HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: headers)
    }

    /// Calls `body` with each field's name and its value without the whitespace around it, in order, for as
    /// long as it returns `true`.
    private func forEachField(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Bool) {
        fieldLines.withUnsafeReadableBytes { raw in
            var lines = HeadLines(raw)
            while let line = lines.next() {
                // A checked line has a colon after a non-empty name.
                let colon = HeadBytes.firstIndex(of: UInt8(ascii: ":"), in: line) ?? line.startIndex
                let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
                guard body(name, HeadBytes.trimmed(line[(colon + 1)...])) else { return }
            }
        }
    }
}

/// The fields of a request the gateway reads to answer it (``RequestHead/fields()``): the first value of
/// a single field, the lines of a list field joined with `,` (RFC 9110, section 5.3).
struct RequestFields {
    var requestID: String?
    var traceparent: String?
    var tracestate: String?
    var apiKey: String?
    var authorization: String?
    var cacheControl: String?
    var acceptEncoding: String?
    var ifNoneMatch: String?
    var ifModifiedSince: String?
}

/// The lines of a head, each without its CR LF (every line has one: ``RequestReader`` checked).
struct HeadLines {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Where the next line would start.
    var offset: Int { position }

    mutating func next() -> Slice<UnsafeRawBufferPointer>? {
        guard position < bytes.count, let base = bytes.baseAddress,
            let found = memchr(base + position, 0x0A, bytes.count - position)
        else { return nil }
        let lf = base.distance(to: UnsafeRawPointer(found))
        defer { position = lf + 1 }
        return bytes[position..<(lf - 1)]
    }
}

/// Byte comparisons and searches the head's readers share.
enum HeadBytes {
    /// Where `byte` first is in `bytes`, found with `memchr`.
    static func firstIndex(of byte: UInt8, in bytes: Slice<UnsafeRawBufferPointer>) -> Int? {
        guard let base = bytes.base.baseAddress, !bytes.isEmpty,
            let found = memchr(base + bytes.startIndex, Int32(byte), bytes.count)
        else { return nil }
        return UnsafeRawPointer(found) - base
    }

    /// `bytes` without the spaces and tabs at either end.
    static func trimmed(_ bytes: Slice<UnsafeRawBufferPointer>) -> UnsafeRawBufferPointer {
        var bytes = bytes
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes = bytes.dropLast() }
        return UnsafeRawBufferPointer(rebasing: bytes)
    }

    static func equals(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        guard let base = bytes.baseAddress else { return bytes.isEmpty }
        return memcmp(base, text.utf8Start, bytes.count) == 0
    }

    /// Compares with `text` (lowercase ASCII) ignoring the case of ASCII letters.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        equalsIgnoringCase(bytes, UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Compares with `lowercase` ignoring the case of ASCII letters in `bytes`.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lowercase: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count == lowercase.count else { return false }
        for (byte, lower) in zip(bytes, lowercase) {
            let folded = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
            guard folded == lower else { return false }
        }
        return true
    }
}
