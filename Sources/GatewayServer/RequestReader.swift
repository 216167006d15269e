import GatewayCore
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One part of a request, in the order they arrive: a head, its body in slices, its end; or, for a request
/// without a body, the whole of it at once.
enum RequestPart {
    /// A whole request: a head that says there is no body.
    case request(RequestHead)
    /// The head of a request with a body: its parts and its end follow.
    case head(RequestHead)
    case body(ByteBuffer)
    case end
}

/// Reads HTTP/1.1 requests from a connection's bytes, one part at a time, when its owner asks for the
/// next: a head, its body in parts, and its end (or the whole of a request without a body), for each
/// request in turn (pipelined requests included).
///
/// The owner takes parts only when it can use them, and the bytes after them wait here meanwhile: a
/// connection answering a request needs no queue for the requests after it.
///
/// It replaces NIO's `HTTPRequestDecoder`, whose general machinery (a byte-to-message loop around llhttp,
/// with a callback into Swift for every piece of every header) costs more than the rest of a cache hit.
/// This reader finds a head's end with `memchr`, reads its lines once, keeps the field lines as a slice of
/// the bytes read (``RequestHead``), and hands on body bytes as slices too, without copying them.
///
/// It is stricter than the RFC requires, never more lenient: every way two parsers could disagree on
/// where a request ends is refused (`400`) rather than guessed at. So are:
/// - a line ending in a bare LF, a header folded over lines, whitespace before a header's colon, a control
///   character in a header value or in the request target;
/// - `Transfer-Encoding` other than exactly `chunked` (HTTP/1.1 only), alongside `Content-Length`, or twice;
///   a `Content-Length` that is not digits, or twice with different values.
/// A head longer than `maxHeadBytes`, or with more than `maxHeaderCount` fields, is `headerOverflow`
/// (answered `431`). After an error, or ``close()``, it reads nothing more.
///
/// Errors are NIO's `HTTPParserError`s; ``lastRefusal`` says which rule refused the request.
struct RequestReader {
    private enum State {
        /// Waiting for, or reading, a head; `scanned` bytes of it were searched for its end already, and
        /// `skipped` bytes of empty lines before it were dropped (they count against the head's size).
        case head(scanned: Int, skipped: Int)
        /// The request's last part was handed on; its end is next.
        case end
        /// A body of known length, `remaining` bytes still to come.
        case body(remaining: Int)
        /// A chunked body: the next chunk's size line.
        case chunkSize
        /// A chunk's bytes, `remaining` still to come, then its CRLF.
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's bytes.
        case chunkEnd
        /// The trailer section after the last chunk, up to an empty line; `seen` bytes of it so far.
        case trailers(seen: Int)
        /// An error was found, or the connection closed; nothing more is read.
        case failed
    }

    /// The longest chunk-size line (with its extensions) accepted.
    static let maxChunkSizeLine = 4096

    private let maxHeadBytes: Int
    private let maxHeaderCount: Int
    private var state = State.head(scanned: 0, skipped: 0)
    /// Bytes read but not yet used; `nil` when everything read was used.
    private(set) var unread: ByteBuffer?
    /// Why the last request was refused, when the reader refused one.
    private(set) var lastRefusal: RefusalReason?

    /// A reader refusing heads over `maxHeadBytes` or `maxHeaderCount` fields.
    init(maxHeadBytes: Int, maxHeaderCount: Int = 256) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
    }

    /// Whether bytes read are waiting to be used (requests not yet taken, or the start of one).
    var hasUnreadBytes: Bool { unread != nil }

    /// Whether a head has begun and not yet all arrived: asked when ``next()`` returned `nil`, it says that
    /// the read ended inside a head, which its owner then times (``HTTPConnection/TimerStateMachine``). Empty
    /// lines before a request count as part of its head, so a stream of them cannot hold a connection open
    /// for free.
    var isInsideHead: Bool {
        guard case .head(_, let skipped) = state else { return false }
        return skipped > 0 || unread != nil
    }

    /// Whether it reads nothing more: after an error, or ``close()``.
    var isClosed: Bool {
        if case .failed = state { return true }
        return false
    }

    /// Adds the bytes of a read after those not yet used.
    mutating func append(_ bytes: ByteBuffer) {
        if case .failed = state { return }
        guard var earlier = unread.take() else {
            unread = bytes
            return
        }
        var bytes = bytes
        earlier.writeBuffer(&bytes)
        unread = earlier
    }

    /// The next part of the requests read, or `nil` when it has not all arrived yet (and after an error or
    /// ``close()``); then ``isInsideHead`` says whether the bytes left are the start of a head.
    mutating func next() throws -> RequestPart? {
        if case .end = state {
            state = .head(scanned: 0, skipped: 0)
            return .end
        }
        guard var bytes = unread.take() else { return nil }
        do {
            reading: while true {
                switch try step(&bytes) {
                case .part(let part):
                    // When everything read was used, it is let go of now: the part may be kept a while.
                    if bytes.readableBytes > 0 { unread = bytes }
                    return part
                case .advanced:
                    continue
                case .needsBytes:
                    break reading
                }
            }
        } catch let refusal as RequestRefusal {
            close()
            lastRefusal = refusal.reason
            throw refusal.error
        } catch {
            close()
            throw error
        }
        if bytes.readableBytes > 0 {
            // The start of a request cut off by the end of the read: the next read's bytes go after it.
            // What was used goes, so a connection's buffer never grows with what it carried before.
            bytes.discardReadBytes()
            unread = bytes
        }
        return nil
    }

    /// The connection closed: what was read is dropped, and nothing more is read.
    mutating func close() {
        state = .failed
        unread = nil
    }

    /// What one step of decoding did.
    private enum Step {
        /// It read a part.
        case part(RequestPart)
        /// It read something that is not handed on (a chunk's size line, a trailer).
        case advanced
        /// It needs more bytes.
        case needsBytes
    }

    /// Decodes one step from `bytes`.
    private mutating func step(_ bytes: inout ByteBuffer) throws -> Step {
        switch state {
        case .head(let scanned, let skipped):
            guard let (head, framing) = try readHead(&bytes, scanned: scanned, skipped: skipped) else {
                return .needsBytes
            }
            switch framing {
            case .none:
                state = .head(scanned: 0, skipped: 0)
                return .part(.request(head))
            case .length(let length): state = .body(remaining: length)
            case .chunked: state = .chunkSize
            }
            return .part(.head(head))
        case .end:
            state = .head(scanned: 0, skipped: 0)
            return .part(.end)
        case .body(let remaining):
            guard let (part, left) = Self.bodySlice(&bytes, remaining: remaining) else { return .needsBytes }
            state = left == 0 ? .end : .body(remaining: left)
            return .part(.body(part))
        case .chunkSize:
            guard let line = try readLine(&bytes, limit: Self.maxChunkSizeLine) else {
                return .needsBytes
            }
            let size = try Self.chunkSize(line)
            state = size == 0 ? .trailers(seen: 0) : .chunkData(remaining: size)
            return .advanced
        case .chunkData(let remaining):
            guard let (part, left) = Self.bodySlice(&bytes, remaining: remaining) else { return .needsBytes }
            state = left == 0 ? .chunkEnd : .chunkData(remaining: left)
            return .part(.body(part))
        case .chunkEnd:
            guard bytes.readableBytes >= 2 else {
                return .needsBytes
            }
            guard bytes.readInteger(as: UInt16.self) == Self.crlf else {
                throw RequestRefusal(.invalidChunk, .invalidChunkSize)
            }
            state = .chunkSize
            return .advanced
        case .trailers(let seen):
            // Trailers are checked like header fields and dropped; together they may be as long as a head.
            guard seen < maxHeadBytes else { throw RequestRefusal(.headTooLarge, .headerOverflow) }
            guard let line = try readLine(&bytes, limit: maxHeadBytes - seen) else {
                return .needsBytes
            }
            if line.isEmpty {
                state = .head(scanned: 0, skipped: 0)
                return .part(.end)
            }
            _ = try line.withUnsafeBytes { try Self.parseField(UnsafeRawBufferPointer($0)[...]) }
            state = .trailers(seen: seen + line.count + 2)
            return .advanced
        case .failed:
            bytes.moveReaderIndex(to: bytes.writerIndex)
            return .needsBytes
        }
    }

    /// Up to `remaining` body bytes from `bytes`, as a slice (not a copy), and how many are still to come
    /// after them; `nil` when no byte is there.
    private static func bodySlice(_ bytes: inout ByteBuffer, remaining: Int) -> (part: ByteBuffer, left: Int)? {
        guard bytes.readableBytes > 0, let part = bytes.readSlice(length: min(remaining, bytes.readableBytes)) else {
            return nil
        }
        return (part, remaining - part.readableBytes)
    }

    // MARK: - Heads

    private enum Framing {
        case none
        case length(Int)
        case chunked
    }

    /// CR LF read as a big-endian integer.
    private static let crlf = UInt16(0x0D0A)

    /// Reads a whole head from `bytes`, or returns `nil` (and notes how far it looked) when it is not all
    /// there yet.
    private mutating func readHead(
        _ bytes: inout ByteBuffer,
        scanned: Int,
        skipped: Int
    ) throws -> (RequestHead, Framing)? {
        // Empty lines before a request are allowed (RFC 9112, 2.2), but they are part of what the client
        // sends before its head: they count against the head's size and its timer, so a stream of them
        // cannot hold a connection open for free.
        var skipped = skipped
        if scanned == 0 {
            while bytes.readableBytes >= 2, bytes.getInteger(at: bytes.readerIndex, as: UInt16.self) == Self.crlf {
                bytes.moveReaderIndex(forwardBy: 2)
                skipped += 2
                if skipped >= maxHeadBytes { throw RequestRefusal(.headTooLarge, .headerOverflow) }
            }
        }
        guard bytes.readableBytes > 0 else {
            if skipped > 0 { state = .head(scanned: 0, skipped: skipped) }
            return nil
        }
        let limit = maxHeadBytes - skipped
        let found = try bytes.withUnsafeReadableBytes { raw in
            try Self.endOfHead(in: raw, from: scanned, limit: limit)
        }
        guard let length = found else {
            if bytes.readableBytes > limit { throw RequestRefusal(.headTooLarge, .headerOverflow) }
            state = .head(scanned: max(0, bytes.readableBytes - 3), skipped: skipped)
            return nil
        }
        let parsed = try bytes.withUnsafeReadableBytes { raw in
            try Self.parseHead(UnsafeRawBufferPointer(rebasing: raw[..<length]), maxHeaderCount: maxHeaderCount)
        }
        // The field lines, from after the request line to before the empty line: within the readable
        // bytes, since `parseHead` read them there.
        guard
            let fieldLines = bytes.getSlice(
                at: bytes.readerIndex + parsed.fieldsStart,
                length: length - 2 - parsed.fieldsStart
            )
        else { preconditionFailure("a parsed head's field lines lie outside the bytes it was parsed from") }
        bytes.moveReaderIndex(forwardBy: length)
        var head = RequestHead(
            method: parsed.method,
            uri: parsed.uri,
            version: parsed.version,
            isKeepAlive: parsed.isKeepAlive,
            fieldLines: fieldLines
        )
        head.hasHost = parsed.hostCount == 1
        head.expectation = parsed.expectation
        if case .length(let declared) = parsed.framing { head.contentLength = declared }
        return (head, parsed.framing)
    }

    /// The length of the head at the start of `raw` (through its empty line), or `nil` if it has not all
    /// arrived. Lines before `from` were looked at already; a bare LF anywhere is an error.
    private static func endOfHead(in raw: UnsafeRawBufferPointer, from: Int, limit: Int) throws -> Int? {
        guard let base = raw.baseAddress else { return nil }
        var index = from
        // A head's last byte is at most at `limit - 1`.
        let searchEnd = min(raw.count, limit)
        while index < searchEnd {
            guard let found = memchr(base + index, 0x0A, searchEnd - index) else { break }
            let lf = base.distance(to: UnsafeRawPointer(found))
            guard lf > 0, raw[lf - 1] == 0x0D else { throw RequestRefusal(.bareLF, .lfExpected) }
            // The empty line: CR LF right after the previous line's LF.
            if lf >= 3, raw[lf - 2] == 0x0A { return lf + 1 }
            index = lf + 1
        }
        if raw.count >= limit { throw RequestRefusal(.headTooLarge, .headerOverflow) }
        return nil
    }

    /// What a head's lines say.
    private struct ParsedHead {
        var method: HTTPMethod
        var uri: String
        var version: HTTPVersion
        var isKeepAlive: Bool
        var framing: Framing
        /// Where the field lines start, after the request line.
        var fieldsStart: Int
        /// How many `Host` fields there were (0 or 1: a second is refused).
        var hostCount: Int
        var expectation: RequestHead.Expectation
    }

    /// What `Connection` said so far.
    private enum ConnectionVerdict {
        case none
        case close
        case keepAlive
    }

    /// Parses a whole head (request line, fields, empty line; every line ends in CR LF).
    private static func parseHead(_ head: UnsafeRawBufferPointer, maxHeaderCount: Int) throws -> ParsedHead {
        var lines = HeadLines(head)
        guard let requestLine = lines.next() else { throw RequestRefusal(.invalidRequestLine, .invalidConstant) }
        let (method, uri, version) = try parseRequestLine(requestLine)
        let fieldsStart = lines.offset

        var fieldCount = 0
        var contentLength: Int?
        var transferEncodings = 0
        var chunked = false
        var connection = ConnectionVerdict.none
        var hostCount = 0
        var expectation = RequestHead.Expectation.none
        while let line = lines.next(), !line.isEmpty {
            guard fieldCount < maxHeaderCount else { throw RequestRefusal(.tooManyFields, .headerOverflow) }
            fieldCount += 1
            let (name, valueBytes) = try parseField(line)
            if HeadBytes.equalsIgnoringCase(name, "content-length") {
                let length = try Self.contentLength(valueBytes)
                if let earlier = contentLength, earlier != length {
                    throw RequestRefusal(.conflictingLength, .unexpectedContentLength)
                }
                contentLength = length
            } else if HeadBytes.equalsIgnoringCase(name, "transfer-encoding") {
                transferEncodings += 1
                chunked = HeadBytes.equalsIgnoringCase(valueBytes, "chunked")
                // Anything but one `chunked` (a list, a second header, another coding) is refused.
                guard chunked, transferEncodings == 1 else {
                    throw RequestRefusal(.unsupportedTransferEncoding, .invalidHeaderToken)
                }
            } else if HeadBytes.equalsIgnoringCase(name, "connection") {
                connection = Self.connection(valueBytes, after: connection)
            } else if HeadBytes.equalsIgnoringCase(name, "host") {
                // RFC 9112, 3.2: more than one Host, or one that is not a host and port, is refused.
                hostCount += 1
                guard hostCount == 1, valueBytes.allSatisfy(HeaderField.isHostByte) else {
                    throw RequestRefusal(.invalidHost, .invalidHeaderToken)
                }
            } else if HeadBytes.equalsIgnoringCase(name, "expect") {
                // One `100-continue` is understood; anything else (another value, a list, a second field)
                // is an expectation the gateway cannot meet.
                let isContinue = expectation == .none && HeadBytes.equalsIgnoringCase(valueBytes, "100-continue")
                expectation = isContinue ? .continue : .unsupported
            }
        }

        let framing: Framing
        if chunked {
            guard contentLength == nil, version == .http1_1 else {
                throw RequestRefusal(.conflictingLength, .unexpectedContentLength)
            }
            framing = .chunked
        } else if let contentLength, contentLength > 0 {
            framing = .length(contentLength)
        } else {
            framing = .none
        }
        let isKeepAlive: Bool
        switch connection {
        case .close: isKeepAlive = false
        case .keepAlive: isKeepAlive = true
        case .none: isKeepAlive = version.major == 1 && version.minor >= 1
        }
        return ParsedHead(
            method: method,
            uri: uri,
            version: version,
            isKeepAlive: isKeepAlive,
            framing: framing,
            fieldsStart: fieldsStart,
            hostCount: hostCount,
            expectation: expectation
        )
    }

    /// Reads a `Connection` value's comma-separated options as NIO's `HTTPHeaders.isKeepAlive` does: `close`
    /// closes, `keep-alive` keeps alive, and either seen after an earlier verdict closes.
    private static func connection(
        _ value: UnsafeRawBufferPointer,
        after verdict: ConnectionVerdict
    ) -> ConnectionVerdict {
        var verdict = verdict
        var rest = value[...]
        while !rest.isEmpty {
            let comma = HeadBytes.firstIndex(of: UInt8(ascii: ","), in: rest) ?? rest.endIndex
            let option = HeadBytes.trimmed(rest[..<comma])
            if HeadBytes.equalsIgnoringCase(option, "close") {
                verdict = .close
            } else if HeadBytes.equalsIgnoringCase(option, "keep-alive") {
                verdict = verdict == .none ? .keepAlive : .close
            }
            rest = rest[min(comma + 1, rest.endIndex)...]
        }
        return verdict
    }

    /// A field line, `name: value`: a token, a colon, and a value without control characters, returned
    /// without the whitespace around it.
    private static func parseField(
        _ line: Slice<UnsafeRawBufferPointer>
    ) throws -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        // A line that starts with whitespace continues the one before (obs-fold): refused, and named.
        if line.first == 0x20 || line.first == 0x09 { throw RequestRefusal(.foldedField, .invalidHeaderToken) }
        guard let colon = HeadBytes.firstIndex(of: UInt8(ascii: ":"), in: line), colon > line.startIndex else {
            throw RequestRefusal(.invalidFieldName, .invalidHeaderToken)
        }
        let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
        // Whitespace before the colon is not allowed: it fails here, as it is not a token byte.
        guard name.allSatisfy({ HeaderField.isTokenByte($0) }) else {
            throw RequestRefusal(.invalidFieldName, .invalidHeaderToken)
        }
        let value = HeadBytes.trimmed(line[(colon + 1)...])
        guard value.allSatisfy({ HeaderField.isValueByte($0) }) else {
            throw RequestRefusal(.invalidFieldValue, .invalidCharactersUsed)
        }
        return (name, value)
    }

    /// `METHOD SP request-target SP HTTP/1.x`, with single spaces.
    private static func parseRequestLine(
        _ line: Slice<UnsafeRawBufferPointer>
    ) throws -> (HTTPMethod, String, HTTPVersion) {
        guard let firstSpace = HeadBytes.firstIndex(of: UInt8(ascii: " "), in: line), firstSpace > line.startIndex
        else {
            throw RequestRefusal(.invalidRequestLine, .invalidMethod)
        }
        let methodBytes = UnsafeRawBufferPointer(rebasing: line[..<firstSpace])
        guard methodBytes.allSatisfy({ HeaderField.isTokenByte($0) }) else {
            throw RequestRefusal(.invalidRequestLine, .invalidMethod)
        }
        let rest = line[(firstSpace + 1)...]
        guard let secondSpace = HeadBytes.firstIndex(of: UInt8(ascii: " "), in: rest), secondSpace > rest.startIndex
        else {
            throw RequestRefusal(.invalidRequestLine, .invalidURL)
        }
        let target = UnsafeRawBufferPointer(rebasing: rest[..<secondSpace])
        // Visible ASCII and the bytes of UTF-8 sequences (checked later, with the query); no space, no control,
        // and no `#`: a fragment is not part of a request target (RFC 9112, 3.2), and one passed on would
        // reach the cache key and the upstream.
        guard target.allSatisfy({ $0 > 0x20 && $0 != 0x7F && $0 != UInt8(ascii: "#") }) else {
            throw RequestRefusal(.invalidTarget, .invalidURL)
        }
        let versionBytes = UnsafeRawBufferPointer(rebasing: rest[(secondSpace + 1)...])
        let version: HTTPVersion
        if HeadBytes.equals(versionBytes, "HTTP/1.1") {
            version = .http1_1
        } else if HeadBytes.equals(versionBytes, "HTTP/1.0") {
            version = .http1_0
        } else {
            throw RequestRefusal(.invalidVersion, .invalidVersion)
        }
        let method = Self.method(methodBytes)
        return (method, String(decoding: target, as: UTF8.self), version)
    }

    private static func method(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod {
        if HeadBytes.equals(bytes, "GET") { return .GET }
        if HeadBytes.equals(bytes, "HEAD") { return .HEAD }
        if HeadBytes.equals(bytes, "POST") { return .POST }
        return HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self))
    }

    /// Digits only, at most 18 of them (no sign, no list, no spaces).
    private static func contentLength(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        guard (1...18).contains(bytes.count) else { throw RequestRefusal(.invalidContentLength, .invalidContentLength) }
        var value = 0
        for byte in bytes {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else {
                throw RequestRefusal(.invalidContentLength, .invalidContentLength)
            }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// A chunk-size line: hexadecimal digits, then nothing or extensions, each `;name`, `;name=token` or
    /// `;name="quoted string"` (RFC 9112, 7.1.1), with no whitespace anywhere: strict parsers refuse
    /// `5 \r\n`, and a front proxy that reads such a line differently would frame the body differently.
    static func chunkSize(_ line: [UInt8]) throws -> Int {
        var size = 0
        var index = 0
        while index < line.count, let digit = hexValue(line[index]) {
            guard index < 15 else { throw RequestRefusal(.invalidChunk, .invalidChunkSize) }
            size = size << 4 | digit
            index += 1
        }
        guard index > 0 else { throw RequestRefusal(.invalidChunk, .invalidChunkSize) }
        var rest = line[index...]
        while let first = rest.first {
            guard first == UInt8(ascii: ";") else { throw RequestRefusal(.invalidChunk, .invalidChunkSize) }
            rest = try chunkExtension(rest.dropFirst())
        }
        return size
    }

    /// One chunk extension after its `;`: `name`, `name=token` or `name="quoted"`; returns what follows it.
    private static func chunkExtension(_ bytes: ArraySlice<UInt8>) throws -> ArraySlice<UInt8> {
        let name = bytes.prefix(while: HeaderField.isTokenByte)
        guard !name.isEmpty else { throw RequestRefusal(.invalidChunk, .invalidChunkSize) }
        var rest = bytes[name.endIndex...]
        guard rest.first == UInt8(ascii: "=") else { return rest }
        rest = rest.dropFirst()
        if rest.first != UInt8(ascii: "\"") {
            let token = rest.prefix(while: HeaderField.isTokenByte)
            guard !token.isEmpty else { throw RequestRefusal(.invalidChunk, .invalidChunkSize) }
            return rest[token.endIndex...]
        }
        // A quoted string: visible ASCII, spaces and tabs, `\` escaping one of them; no byte outside ASCII.
        var index = rest.startIndex + 1
        while index < rest.endIndex {
            let byte = rest[index]
            if byte == UInt8(ascii: "\"") { return rest[(index + 1)...] }
            if byte == UInt8(ascii: "\\") {
                index += 1
                guard index < rest.endIndex, isQuotedTextByte(rest[index]) else {
                    throw RequestRefusal(.invalidChunk, .invalidChunkSize)
                }
            } else {
                guard isQuotedTextByte(byte) else { throw RequestRefusal(.invalidChunk, .invalidChunkSize) }
            }
            index += 1
        }
        throw RequestRefusal(.invalidChunk, .invalidChunkSize)
    }

    /// A byte a quoted string may hold as it is (or after `\`): tab, space and visible ASCII.
    private static func isQuotedTextByte(_ byte: UInt8) -> Bool {
        byte == 0x09 || (0x20...0x7E).contains(byte)
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A")) + 10
        default: return nil
        }
    }

    /// Reads a line ending in CR LF (without it), or `nil` if it has not all arrived; longer than `limit`
    /// is an error, and so is a bare LF.
    private func readLine(_ bytes: inout ByteBuffer, limit: Int) throws -> [UInt8]? {
        let end = try bytes.withUnsafeReadableBytes { raw -> Int? in
            guard let base = raw.baseAddress else { return nil }
            let searched = min(raw.count, limit + 2)
            guard let found = memchr(base, 0x0A, searched) else {
                if raw.count > limit + 1 { throw RequestRefusal(.lineTooLong, .headerOverflow) }
                return nil
            }
            let lf = base.distance(to: UnsafeRawPointer(found))
            guard lf > 0, raw[lf - 1] == 0x0D else { throw RequestRefusal(.bareLF, .lfExpected) }
            return lf
        }
        guard let end else { return nil }
        // The line and its CR LF were found within the readable bytes.
        guard let line = bytes.readBytes(length: end - 1) else {
            preconditionFailure("a line found in the readable bytes could not be read")
        }
        bytes.moveReaderIndex(forwardBy: 2)
        return line
    }
}
