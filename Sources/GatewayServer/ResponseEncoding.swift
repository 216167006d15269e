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
    /// Writes the status line, e.g. `HTTP/1.1 200 OK`.
    mutating func writeStatusLine(version: HTTPVersion, status: HTTPResponseStatus) {
        if version.major == 1, version.minor == 1, status == .ok {
            writeStaticString("HTTP/1.1 200 OK\r\n")
            return
        }
        if version.major == 1, version.minor == 1 {
            writeStaticString("HTTP/1.1 ")
        } else if version.major == 1, version.minor == 0 {
            writeStaticString("HTTP/1.0 ")
        } else {
            writeString("HTTP/\(version.major).\(version.minor) ")
        }
        writeDecimal(Int(status.code))
        writeInteger(UInt8(ascii: " "))
        writeString(status.reasonPhrase)
        writeStaticString("\r\n")
    }

    /// Writes `name: value` and a line break, or nothing when either is not allowed in a header.
    mutating func writeHeader(name: String, value: String) {
        guard HeaderField.isToken(name), HeaderField.isValue(value) else { return }
        writeString(name)
        writeStaticString(": ")
        writeString(value)
        writeStaticString("\r\n")
    }

    /// Writes every header that is allowed (see ``writeHeader(name:value:)``).
    mutating func writeHeaders(_ headers: HTTPHeaders) {
        for (name, value) in headers { writeHeader(name: name, value: value) }
    }

    /// Writes `name: value` for a name the gateway spells itself and a number.
    mutating func writeHeader(name: StaticString, decimal value: Int) {
        writeStaticString(name)
        writeStaticString(": ")
        writeDecimal(value)
        writeStaticString("\r\n")
    }

    /// Writes `value` in decimal ASCII, without allocating.
    mutating func writeDecimal(_ value: Int) {
        var magnitude = value.magnitude
        let digitCount = Self.decimalDigits(magnitude)
        let count = digitCount + (value < 0 ? 1 : 0)
        writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
            if value < 0 { bytes[0] = UInt8(ascii: "-") }
            var index = count
            repeat {
                index -= 1
                bytes[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            return count
        }
    }

    private static func decimalDigits(_ value: UInt) -> Int {
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        return digits
    }
}

/// What RFC 9110 allows in header names and values.
enum HeaderField {
    /// A non-empty `token`: letters, digits and ``!#$%&'*+-.^_`|~``.
    static func isToken(_ name: String) -> Bool {
        !name.isEmpty && allBytes(of: name, satisfy: isTokenByte)
    }

    /// Visible characters, spaces, tabs and bytes of UTF-8 sequences: no control character (CR, LF, NUL,
    /// DEL and the rest).
    static func isValue(_ value: String) -> Bool {
        allBytes(of: value, satisfy: isValueByte)
    }

    /// Whether `byte` may appear in a token.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool { tokenBytes[Int(byte)] }

    /// Whether `byte` may appear in a header value.
    @inline(__always)
    static func isValueByte(_ byte: UInt8) -> Bool { byte == 0x09 || (byte >= 0x20 && byte != 0x7F) }

    private static func allBytes(of text: String, satisfy isAllowed: (UInt8) -> Bool) -> Bool {
        // Native strings are contiguous UTF-8: a plain loop over the bytes.
        text.utf8.withContiguousStorageIfAvailable { bytes in bytes.allSatisfy(isAllowed) }
            ?? text.utf8.allSatisfy(isAllowed)
    }

    /// Whether each byte may appear in a token.
    private static let tokenBytes: [Bool] = (0..<256).map { value in
        let byte = UInt8(value)
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
