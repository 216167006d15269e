import GatewayCore
import NIOCore
import NIOHTTP1

/// Writes HTTP/1.1 response heads straight into a `ByteBuffer`.
///
/// The gateway writes its answers whole, with headers it chose itself, so it needs none of what NIO's
/// `HTTPResponseEncoder` and the handlers around it do per answer (framing decisions, chunking, a second
/// pass to validate headers): on a cache hit those cost more than finding the page. What they guarded
/// against is kept here: a header whose name is not a token, or whose value holds a control character
/// (a CR or LF could start a header or an answer of its own), is left out.
extension ByteBuffer {
    /// Writes a whole answer's head: the status line, `response`'s header lines and headers, `Cache-Status`, `Age`,
    /// `Vary` when the response varies by encoding, `Content-Length` (of `response`'s body; none on a `304`), `X-Request-Id` when there is one, `connection` when
    /// given, and the blank line. `requestID` is written as it is: the caller checked or made it.
    mutating func writeResponseHead(
        version: HTTPVersion,
        response: GatewayResponse,
        requestID: String?,
        connection: StaticString?
    ) {
        var bound = HeadWriter.statusLineBound(status: response.status) + HeadWriter.decimalHeaderBound * 2 + 2
        bound += response.headerLines?.readableBytes ?? 0
        for (name, value) in response.headers { bound += HeadWriter.headerBound(name: name, value: value) }
        // Spelled once: a fresh hit's is written from its number, any other's from this text.
        var cacheStatusText: String?
        switch response.cacheStatus {
        case .hit: bound += HeadWriter.freshHitCacheStatusBound
        case .some(let status):
            let text = status.description
            bound += HeadWriter.headerBound(name: "Cache-Status", value: text)
            cacheStatusText = text
        case nil: break
        }
        if let requestID { bound += HeadWriter.headerBound(name: "X-Request-Id", value: requestID) }
        if response.rateLimit != nil { bound += HeadWriter.rateLimitBound }
        if response.variesByEncoding { bound += HeadWriter.varyLine.utf8CodeUnitCount }
        if let connection { bound += connection.utf8CodeUnitCount }
        writeHead(maximumBytes: bound) { head in
            head.appendStatusLine(version: version, status: response.status)
            if let lines = response.headerLines { lines.withUnsafeReadableBytes { head.append($0) } }
            for (name, value) in response.headers { head.appendHeader(name: name, value: value) }
            if case .hit(let ttl) = response.cacheStatus {
                // The constant part of the line in one copy.
                head.append(CacheStatus.freshHitPrefix)
                head.append(decimal: ttl)
                head.append("\r\n")
            } else if let cacheStatusText {
                head.appendHeader(name: "Cache-Status", value: cacheStatusText)
            }
            if let age = response.age { head.appendHeader(name: "Age", decimal: age) }
            if response.variesByEncoding { head.append(HeadWriter.varyLine) }
            // A 304 has no body, and its Content-Length would be the 200's (RFC 9110, section 8.6): none.
            if response.status != .notModified {
                head.appendHeader(name: "Content-Length", decimal: response.body.readableBytes)
            }
            if let budget = response.rateLimit {
                // The IETF httpapi RateLimit header fields: the team's policy, and what is left of it.
                head.append("RateLimit-Policy: \"upstream\";q=")
                head.append(decimal: budget.perMinute)
                head.append(";w=60\r\nRateLimit: \"upstream\";r=")
                head.append(decimal: budget.remaining)
                head.append(";t=")
                head.append(decimal: budget.secondsToNext)
                head.append("\r\n")
            }
            if let requestID {
                head.append("X-Request-Id: ")
                head.append(requestID)
                head.append("\r\n")
            }
            if let connection { head.append(connection) }
            head.append("\r\n")
        }
    }

    /// Reserves `maximumBytes` once and writes into them with `body`: a head's dozen pieces cost one
    /// capacity check and one exclusive access, not one each.
    mutating func writeHead(maximumBytes: Int, _ body: (inout HeadWriter) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: maximumBytes) { bytes in
            var writer = HeadWriter(bytes)
            body(&writer)
            return writer.count
        }
    }
}

/// Appends the bytes of a head to memory reserved for it. Every append checks that it fits: a bound
/// computed too small stops the process rather than write past the reservation.
struct HeadWriter {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    /// Bytes written so far.
    private(set) var count = 0

    /// The longest decimal of an `Int`, sign included.
    static let decimalBound = 20
    /// A number header the gateway names (`Age`, `Content-Length`): at most 16 bytes of name, `": "`, a
    /// decimal and `"\r\n"`.
    static let decimalHeaderBound = 40
    /// `Cache-Status: xi-gateway; hit; ttl=`, a decimal and `"\r\n"`.
    static let freshHitCacheStatusBound = 64
    /// `RateLimit-Policy: "upstream";q=N;w=60` and `RateLimit: "upstream";r=N;t=N`, each line with its
    /// `"\r\n"`: 67 bytes of text and three decimals.
    static let rateLimitBound = 67 + 3 * decimalBound
    /// What every list answer says while pages have two forms.
    static let varyLine: StaticString = "Vary: Accept-Encoding\r\n"

    init(_ bytes: UnsafeMutableRawBufferPointer) {
        base = bytes.baseAddress!
        capacity = bytes.count
    }

    /// The most a status line with `status` takes.
    static func statusLineBound(status: HTTPResponseStatus) -> Int {
        "HTTP/".utf8.count + 3 * decimalBound + 5 + status.reasonPhrase.utf8.count
    }

    /// The most `name: value` and its line break take.
    static func headerBound(name: String, value: String) -> Int { name.utf8.count + value.utf8.count + 4 }

    @inline(__always)
    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inline(__always)
    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        precondition(count + bytes.count <= capacity, "a response head outgrew its reservation")
        guard let start = bytes.baseAddress else { return }
        (base + count).copyMemory(from: start, byteCount: bytes.count)
        count += bytes.count
    }

    @inline(__always)
    mutating func append(byte: UInt8) {
        precondition(count < capacity, "a response head outgrew its reservation")
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    /// `value` in decimal ASCII.
    mutating func append(decimal value: Int) {
        var magnitude = value.magnitude
        var digits = 1
        var rest = magnitude
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        let length = digits + (value < 0 ? 1 : 0)
        precondition(count + length <= capacity, "a response head outgrew its reservation")
        if value < 0 { base.storeBytes(of: UInt8(ascii: "-"), toByteOffset: count, as: UInt8.self) }
        var index = count + length
        repeat {
            index -= 1
            base.storeBytes(
                of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10),
                toByteOffset: index,
                as: UInt8.self
            )
            magnitude /= 10
        } while magnitude > 0
        count += length
    }

    /// The status line, e.g. `HTTP/1.1 200 OK`.
    mutating func appendStatusLine(version: HTTPVersion, status: HTTPResponseStatus) {
        if version.major == 1, version.minor == 1, status == .ok {
            append("HTTP/1.1 200 OK\r\n")
            return
        }
        if version.major == 1, version.minor == 1 {
            append("HTTP/1.1 ")
        } else if version.major == 1, version.minor == 0 {
            append("HTTP/1.0 ")
        } else {
            append("HTTP/")
            append(decimal: version.major)
            append(byte: UInt8(ascii: "."))
            append(decimal: version.minor)
            append(byte: UInt8(ascii: " "))
        }
        append(decimal: Int(status.code))
        append(byte: UInt8(ascii: " "))
        append(status.reasonPhrase)
        append("\r\n")
    }

    /// `name: value` and a line break, or nothing when either is not allowed in a header.
    mutating func appendHeader(name: String, value: String) {
        guard HeaderField.isToken(name), HeaderField.isValue(value) else { return }
        append(name)
        append(": ")
        append(value)
        append("\r\n")
    }

    /// `name: value` for a name the gateway spells itself and a number.
    mutating func appendHeader(name: StaticString, decimal value: Int) {
        append(name)
        append(": ")
        append(decimal: value)
        append("\r\n")
    }
}
