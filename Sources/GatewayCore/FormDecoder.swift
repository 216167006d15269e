/// Splits and decodes an `application/x-www-form-urlencoded` query the way the upstream does
/// (Python's `parse_qsl(keep_blank_values=True)`): fields split on `&`, empty fields skipped, a field
/// without `=` has the empty value, `+` is a space, `%XX` escapes decode to UTF-8.
///
/// Unlike Python, which keeps a bad escape literally and replaces invalid UTF-8, this decoder rejects
/// both: a gateway should not guess at what a broken client meant.
public enum FormDecoder {
    /// Why a query could not be decoded.
    public enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
        /// A `%` not followed by two hexadecimal digits.
        case badEscape
        /// Escapes that decode to bytes which are not UTF-8.
        case invalidUTF8
        /// A raw byte that must be percent-encoded in a URL (control, space, non-ASCII).
        case unencodedByte(UInt8)

        public var description: String {
            switch self {
            case .badEscape:
                return "the query has a '%' that is not followed by two hexadecimal digits"
            case .invalidUTF8:
                return "the query has percent-escapes that do not decode to UTF-8"
            case .unencodedByte(let byte):
                return
                    "the query has a byte (0x\(String(byte, radix: 16, uppercase: true))) that must be percent-encoded"
            }
        }
    }

    /// Decodes `query` (the part of the target after `?`) into name/value pairs, in order.
    public static func decode(_ query: Substring) throws(Failure) -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        for field in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let name: Substring.UTF8View.SubSequence
            let value: Substring.UTF8View.SubSequence
            if let equals = field.firstIndex(of: UInt8(ascii: "=")) {
                name = field[field.startIndex..<equals]
                value = field[field.index(after: equals)...]
            } else {
                name = field
                value = field[field.endIndex...]
            }
            pairs.append((try decodeComponent(name), try decodeComponent(value)))
        }
        return pairs
    }

    /// Decodes one name or value: `+` to space, `%XX` to its byte, the result checked as UTF-8.
    public static func decodeComponent(_ bytes: Substring.UTF8View.SubSequence) throws(Failure) -> String {
        var needsDecoding = false
        for byte in bytes {
            guard byte > 0x20, byte < 0x7F else { throw .unencodedByte(byte) }
            if byte == UInt8(ascii: "%") || byte == UInt8(ascii: "+") { needsDecoding = true }
        }
        guard needsDecoding else { return String(decoding: bytes, as: UTF8.self) }

        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "+"):
                decoded.append(UInt8(ascii: " "))
                index = bytes.index(after: index)
            case UInt8(ascii: "%"):
                let high = bytes.index(after: index)
                guard high != bytes.endIndex, let highValue = PercentEncoding.hexValue(bytes[high]) else {
                    throw .badEscape
                }
                let low = bytes.index(after: high)
                guard low != bytes.endIndex, let lowValue = PercentEncoding.hexValue(bytes[low]) else {
                    throw .badEscape
                }
                decoded.append(highValue << 4 | lowValue)
                index = bytes.index(after: low)
            default:
                decoded.append(byte)
                index = bytes.index(after: index)
            }
        }
        guard let string = String(validating: decoded, as: UTF8.self) else { throw .invalidUTF8 }
        return string
    }
}
