/// What RFC 9110 allows in header names and values.
public enum HeaderField {
    /// A non-empty `token`: letters, digits and ``!#$%&'*+-.^_`|~``.
    public static func isToken(_ name: String) -> Bool {
        !name.isEmpty && allBytes(of: name, satisfy: isTokenByte)
    }

    /// Visible characters, spaces, tabs and bytes of UTF-8 sequences: no control character (CR, LF, NUL,
    /// DEL and the rest).
    public static func isValue(_ value: String) -> Bool {
        allBytes(of: value, satisfy: isValueByte)
    }

    /// Whether `byte` may appear in a token.
    @inlinable @inline(__always)
    public static func isTokenByte(_ byte: UInt8) -> Bool { tokenBytes[Int(byte)] }

    /// Whether `byte` may appear in a header value.
    @inlinable @inline(__always)
    public static func isValueByte(_ byte: UInt8) -> Bool { byte == 0x09 || (byte >= 0x20 && byte != 0x7F) }

    private static func allBytes(of text: String, satisfy isAllowed: (UInt8) -> Bool) -> Bool {
        // Native strings are contiguous UTF-8: a plain loop over the bytes.
        text.utf8.withContiguousStorageIfAvailable { bytes in bytes.allSatisfy(isAllowed) }
            ?? text.utf8.allSatisfy(isAllowed)
    }

    /// Whether `byte` may appear in a `Host` value, `uri-host [":" port]`: a name of unreserved characters,
    /// `%` escapes and sub-delimiters, or an IP literal in brackets (RFC 3986, 3.2.2).
    @inlinable @inline(__always)
    public static func isHostByte(_ byte: UInt8) -> Bool { hostBytes[Int(byte)] }

    @usableFromInline static let hostBytes: [Bool] = (0..<256).map { value in
        let byte = UInt8(value)
        // The token bytes but `#^`|`, and the sub-delimiters, `:` and brackets tokens lack.
        return tokenBytes[value] ? !"#^`|".utf8.contains(byte) : "(),;=:[]".utf8.contains(byte)
    }

    /// Whether each byte may appear in a token.
    @usableFromInline static let tokenBytes: [Bool] = (0..<256).map { value in
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
