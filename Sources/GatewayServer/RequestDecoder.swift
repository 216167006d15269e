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

/// Reads HTTP/1.1 requests from a connection's bytes: a head, its body in parts, and its end, for each
/// request in turn (pipelined requests included).
///
/// It replaces NIO's `HTTPRequestDecoder`, whose general machinery (a byte-to-message loop around llhttp,
/// with a callback into Swift for every piece of every header) costs more than the rest of a cache hit.
/// This decoder finds a head's end with `memchr`, reads its lines once, and hands on body bytes as slices
/// of the buffer that was read, without copying them.
///
/// It is stricter than the RFC requires, never more lenient: every way two parsers could disagree on
/// where a request ends is refused (`400`) rather than guessed at. So are:
/// - a line ending in a bare LF, a header folded over lines, whitespace before a header's colon, a control
///   character in a header value or in the request target;
/// - `Transfer-Encoding` other than exactly `chunked` (HTTP/1.1 only), alongside `Content-Length`, or twice;
///   a `Content-Length` that is not digits, or twice with different values.
/// A head longer than `maxHeadBytes`, or with more than `maxHeaderCount` fields, is `headerOverflow`
/// (answered `431`). After an error nothing more is read from the connection.
///
/// Errors are NIO's `HTTPParserError`s, fired through `errorCaught` as NIO's decoder would.
public final class RequestDecoder: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = HTTPServerRequestPart

    private enum State {
        /// Waiting for, or reading, a head; `scanned` bytes of it were searched for its end already.
        case head(scanned: Int)
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
        /// An error was reported; everything after it is dropped.
        case failed
    }

    /// The longest chunk-size line (with its extensions) accepted.
    static let maxChunkSizeLine = 4096

    private let maxHeadBytes: Int
    private let maxHeaderCount: Int
    private let headTimer: RequestHeadTimer
    private var state = State.head(scanned: 0)
    /// Bytes read but not yet used (a request cut across reads); `nil` when everything read was used.
    private var pending: ByteBuffer?

    /// A decoder refusing heads over `maxHeadBytes` or `maxHeaderCount` fields, and closing the connection
    /// when a head takes longer than `headTimeout` from its first byte.
    public init(maxHeadBytes: Int, maxHeaderCount: Int = 256, headTimeout: TimeAmount) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
        self.headTimer = RequestHeadTimer(timeout: headTimeout)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if case .failed = state { return }
        if var earlier = pending {
            pending = nil
            earlier.writeBuffer(&bytes)
            bytes = earlier
        }
        do {
            while try decodeOne(&bytes, context: context) {}
        } catch {
            state = .failed
            pending = nil
            context.fireErrorCaught(error)
            return
        }
        if bytes.readableBytes > 0 {
            // The start of a request cut off by the end of the read: the next read's bytes go after it.
            // What was used goes, so a connection's buffer never grows with what it carried before.
            bytes.discardReadBytes()
            pending = bytes
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        pending = nil
        state = .failed
        headTimer.cancel()
        context.fireChannelInactive()
    }

    /// Decodes one step from `bytes`; `false` when more bytes are needed.
    ///
    /// Each step sets the next state before it hands a part on: the handler after this one may close the
    /// channel while it takes the part, and ``channelInactive(context:)`` then sets `.failed`, which stops
    /// decoding there.
    private func decodeOne(_ bytes: inout ByteBuffer, context: ChannelHandlerContext) throws -> Bool {
        switch state {
        case .head(let scanned):
            guard let (head, framing) = try readHead(&bytes, scanned: scanned, context: context) else {
                return false
            }
            headTimer.headCompleted()
            switch framing {
            case .none: state = .head(scanned: 0)
            case .length(let length): state = .body(remaining: length)
            case .chunked: state = .chunkSize
            }
            context.fireChannelRead(wrapInboundOut(.head(head)))
            if case .none = framing { endRequest(context: context) }
            return true
        case .body(let remaining):
            guard bytes.readableBytes > 0 else { return false }
            let part = bytes.readSlice(length: min(remaining, bytes.readableBytes))!
            let left = remaining - part.readableBytes
            state = left == 0 ? .head(scanned: 0) : .body(remaining: left)
            context.fireChannelRead(wrapInboundOut(.body(part)))
            if left == 0 { endRequest(context: context) }
            return true
        case .chunkSize:
            guard let line = try readLine(&bytes, limit: Self.maxChunkSizeLine) else { return false }
            let size = try Self.chunkSize(line)
            state = size == 0 ? .trailers(seen: 0) : .chunkData(remaining: size)
            return true
        case .chunkData(let remaining):
            guard bytes.readableBytes > 0 else { return false }
            let part = bytes.readSlice(length: min(remaining, bytes.readableBytes))!
            let left = remaining - part.readableBytes
            state = left == 0 ? .chunkEnd : .chunkData(remaining: left)
            context.fireChannelRead(wrapInboundOut(.body(part)))
            return true
        case .chunkEnd:
            guard bytes.readableBytes >= 2 else { return false }
            guard bytes.readInteger(as: UInt16.self) == Self.crlf else { throw HTTPParserError.invalidChunkSize }
            state = .chunkSize
            return true
        case .trailers(let seen):
            // Trailers are checked like header fields and dropped; together they may be as long as a head.
            guard seen < maxHeadBytes else { throw HTTPParserError.headerOverflow }
            guard let line = try readLine(&bytes, limit: maxHeadBytes - seen) else { return false }
            if line.isEmpty {
                state = .head(scanned: 0)
                endRequest(context: context)
            } else {
                _ = try line.withUnsafeBytes { try Self.parseField(UnsafeRawBufferPointer($0)[...]) }
                state = .trailers(seen: seen + line.count + 2)
            }
            return true
        case .failed:
            bytes.moveReaderIndex(to: bytes.writerIndex)
            return false
        }
    }

    /// Hands on the end of a request, unless the channel closed while the request's last part was taken.
    private func endRequest(context: ChannelHandlerContext) {
        if case .failed = state { return }
        context.fireChannelRead(wrapInboundOut(.end(nil)))
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
    private func readHead(
        _ bytes: inout ByteBuffer,
        scanned: Int,
        context: ChannelHandlerContext
    ) throws -> (HTTPRequestHead, Framing)? {
        // An empty line or two before a request is allowed (RFC 9112, 2.2).
        while bytes.readableBytes >= 2, bytes.getInteger(at: bytes.readerIndex, as: UInt16.self) == Self.crlf {
            bytes.moveReaderIndex(forwardBy: 2)
        }
        guard bytes.readableBytes > 0 else { return nil }
        let found = try bytes.withUnsafeReadableBytes { raw in
            try Self.endOfHead(in: raw, from: scanned, limit: maxHeadBytes)
        }
        guard let length = found else {
            // Only a head left incomplete by a read is timed: one that arrives whole is done before any
            // check could run, and needs no look at the clock. (The first bytes arrived in this read.)
            headTimer.headBegan(context: context)
            if bytes.readableBytes > maxHeadBytes { throw HTTPParserError.headerOverflow }
            state = .head(scanned: max(0, bytes.readableBytes - 3))
            return nil
        }
        let parsed = try bytes.withUnsafeReadableBytes { raw in
            try Self.parseHead(UnsafeRawBufferPointer(rebasing: raw[..<length]), maxHeaderCount: maxHeaderCount)
        }
        bytes.moveReaderIndex(forwardBy: length)
        return parsed
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
            guard lf > 0, raw[lf - 1] == 0x0D else { throw HTTPParserError.lfExpected }
            // The empty line: CR LF right after the previous line's LF.
            if lf >= 3, raw[lf - 2] == 0x0A { return lf + 1 }
            index = lf + 1
        }
        if raw.count >= limit { throw HTTPParserError.headerOverflow }
        return nil
    }

    /// Parses a whole head (request line, fields, empty line; every line ends in CR LF).
    private static func parseHead(
        _ head: UnsafeRawBufferPointer,
        maxHeaderCount: Int
    ) throws -> (HTTPRequestHead, Framing) {
        var lines = LineReader(head)
        guard let requestLine = lines.next() else { throw HTTPParserError.invalidConstant }
        let (method, uri, version) = try parseRequestLine(requestLine)

        var headers = HTTPHeaders()
        var contentLength: Int?
        var transferEncodings = 0
        var chunked = false
        while let line = lines.next(), !line.isEmpty {
            guard headers.count < maxHeaderCount else { throw HTTPParserError.headerOverflow }
            let (name, valueBytes) = try parseField(line)
            if Self.equalsIgnoringCase(name, "content-length") {
                let length = try Self.contentLength(valueBytes)
                if let earlier = contentLength, earlier != length { throw HTTPParserError.unexpectedContentLength }
                contentLength = length
            } else if Self.equalsIgnoringCase(name, "transfer-encoding") {
                transferEncodings += 1
                chunked = Self.equalsIgnoringCase(valueBytes, "chunked")
                // Anything but one `chunked` (a list, a second header, another coding) is refused.
                guard chunked, transferEncodings == 1 else { throw HTTPParserError.invalidHeaderToken }
            }
            headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: valueBytes, as: UTF8.self))
        }

        let framing: Framing
        if chunked {
            guard contentLength == nil, version == .http1_1 else { throw HTTPParserError.unexpectedContentLength }
            framing = .chunked
        } else if let contentLength, contentLength > 0 {
            framing = .length(contentLength)
        } else {
            framing = .none
        }
        return (HTTPRequestHead(version: version, method: method, uri: uri, headers: headers), framing)
    }

    /// A field line, `name: value`: a token, a colon, and a value without control characters, returned
    /// without the whitespace around it.
    private static func parseField(
        _ line: Slice<UnsafeRawBufferPointer>
    ) throws -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard let colon = Self.firstIndex(of: UInt8(ascii: ":"), in: line), colon > line.startIndex else {
            throw HTTPParserError.invalidHeaderToken
        }
        let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
        // A folded line starts with whitespace, and whitespace before the colon is not allowed: both fail
        // here, since neither is a token byte.
        guard name.allSatisfy({ HeaderField.isTokenByte($0) }) else { throw HTTPParserError.invalidHeaderToken }
        var value = line[(colon + 1)...]
        while let first = value.first, first == 0x20 || first == 0x09 { value = value.dropFirst() }
        while let last = value.last, last == 0x20 || last == 0x09 { value = value.dropLast() }
        guard value.allSatisfy({ HeaderField.isValueByte($0) }) else { throw HTTPParserError.invalidCharactersUsed }
        return (name, UnsafeRawBufferPointer(rebasing: value))
    }

    /// `METHOD SP request-target SP HTTP/1.x`, with single spaces.
    private static func parseRequestLine(
        _ line: Slice<UnsafeRawBufferPointer>
    ) throws -> (HTTPMethod, String, HTTPVersion) {
        guard let firstSpace = Self.firstIndex(of: UInt8(ascii: " "), in: line), firstSpace > line.startIndex else {
            throw HTTPParserError.invalidMethod
        }
        let methodBytes = UnsafeRawBufferPointer(rebasing: line[..<firstSpace])
        guard methodBytes.allSatisfy({ HeaderField.isTokenByte($0) }) else { throw HTTPParserError.invalidMethod }
        let rest = line[(firstSpace + 1)...]
        guard let secondSpace = Self.firstIndex(of: UInt8(ascii: " "), in: rest), secondSpace > rest.startIndex else {
            throw HTTPParserError.invalidURL
        }
        let target = UnsafeRawBufferPointer(rebasing: rest[..<secondSpace])
        // Visible ASCII and the bytes of UTF-8 sequences (checked later, with the query); no space, no control.
        guard target.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { throw HTTPParserError.invalidURL }
        let versionBytes = UnsafeRawBufferPointer(rebasing: rest[(secondSpace + 1)...])
        let version: HTTPVersion
        if Self.equals(versionBytes, "HTTP/1.1") {
            version = .http1_1
        } else if Self.equals(versionBytes, "HTTP/1.0") {
            version = .http1_0
        } else {
            throw HTTPParserError.invalidVersion
        }
        let method = Self.method(methodBytes)
        return (method, String(decoding: target, as: UTF8.self), version)
    }

    /// Where `byte` first is in `bytes`, found with `memchr`.
    private static func firstIndex(of byte: UInt8, in bytes: Slice<UnsafeRawBufferPointer>) -> Int? {
        guard let base = bytes.base.baseAddress, !bytes.isEmpty,
            let found = memchr(base + bytes.startIndex, Int32(byte), bytes.count)
        else { return nil }
        return UnsafeRawPointer(found) - base
    }

    private static func method(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod {
        if equals(bytes, "GET") { return .GET }
        if equals(bytes, "HEAD") { return .HEAD }
        if equals(bytes, "POST") { return .POST }
        return HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self))
    }

    /// Digits only, at most 18 of them (no sign, no list, no spaces).
    private static func contentLength(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        guard (1...18).contains(bytes.count) else { throw HTTPParserError.invalidContentLength }
        var value = 0
        for byte in bytes {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else {
                throw HTTPParserError.invalidContentLength
            }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// A chunk-size line: hexadecimal digits, then nothing, or extensions: optional spaces or tabs, `;`, and
    /// visible characters, spaces and tabs (no control character, no byte outside ASCII).
    private static func chunkSize(_ line: [UInt8]) throws -> Int {
        var size = 0
        var index = 0
        while index < line.count, let digit = hexValue(line[index]) {
            guard index < 15 else { throw HTTPParserError.invalidChunkSize }
            size = size << 4 | digit
            index += 1
        }
        guard index > 0 else { throw HTTPParserError.invalidChunkSize }
        var rest = line[index...].drop { $0 == 0x20 || $0 == 0x09 }
        guard let first = rest.first else { return size }
        guard first == UInt8(ascii: ";") else { throw HTTPParserError.invalidChunkSize }
        rest = rest.dropFirst()
        guard rest.allSatisfy({ $0 == 0x09 || (0x20...0x7E).contains($0) }) else {
            throw HTTPParserError.invalidChunkSize
        }
        return size
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
                if raw.count > limit + 1 { throw HTTPParserError.headerOverflow }
                return nil
            }
            let lf = base.distance(to: UnsafeRawPointer(found))
            guard lf > 0, raw[lf - 1] == 0x0D else { throw HTTPParserError.lfExpected }
            return lf
        }
        guard let end else { return nil }
        let line = bytes.readBytes(length: end - 1)!
        bytes.moveReaderIndex(forwardBy: 2)
        return line
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount && memcmp(bytes.baseAddress!, text.utf8Start, bytes.count) == 0
    }

    /// Compares with `text` (lowercase ASCII) ignoring the case of ASCII letters.
    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        for (byte, lower) in zip(bytes, expected) {
            let folded = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
            guard folded == lower else { return false }
        }
        return true
    }
}

/// The lines of a head, each without its CR LF (every line has one: ``RequestDecoder`` checked).
private struct LineReader {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func next() -> Slice<UnsafeRawBufferPointer>? {
        guard position < bytes.count, let base = bytes.baseAddress,
            let found = memchr(base + position, 0x0A, bytes.count - position)
        else { return nil }
        let lf = base.distance(to: UnsafeRawPointer(found))
        defer { position = lf + 1 }
        return bytes[position..<(lf - 1)]
    }
}

@available(*, unavailable)
extension RequestDecoder: Sendable {}
