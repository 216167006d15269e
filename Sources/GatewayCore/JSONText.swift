/// Writes JSON text the way the upstream's Python serialiser does (`json.dumps(ensure_ascii=False,
/// separators=(",", ":"))`), so the gateway's own bodies are byte-for-byte what the upstream would send.
public enum JSONText {
    /// `string` as a JSON string literal, quotes included.
    public static func quoted(_ string: String) -> String {
        // Most strings need no escape: one pass over the bytes, one copy.
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "\"" + string + "\""
        }
        var output = "\""
        output.reserveCapacity(string.utf8.count + 2)
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
        return output
    }

    /// Appends `string` as a JSON string literal, quotes included, to `output`: what ``quoted(_:)`` returns,
    /// written as bytes without building a string.
    public static func appendQuoted(_ string: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        defer { output.append(UInt8(ascii: "\"")) }
        // Most strings need no escape: their bytes, copied in one go.
        let copied =
            string.utf8.withContiguousStorageIfAvailable { bytes in
                guard !containsEscaped(bytes) else { return false }
                output.append(contentsOf: bytes)
                return true
            } ?? false
        if copied { return }
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case ..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0x0F)])
            default:
                // UTF-8 bytes of other characters, as they are (`ensure_ascii=False`).
                output.append(byte)
            }
        }
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// Whether any of `bytes` needs an escape: a control character, `"` or `\`. Looks at eight bytes at a
    /// time (an access log line quotes a dozen strings).
    static func containsEscaped(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        // Non-zero when a byte of `word` is below `limit` (at most 0x80): the borrow of the subtraction
        // reaches a byte's high bit only through a byte that is below it, and `~word` rules out the
        // bytes whose high bit was set already. ("Determine if a word has a byte less than n", from Bit
        // Twiddling Hacks.)
        func below(_ limit: UInt64, in word: UInt64) -> UInt64 { (word &- ones &* limit) & ~word & highs }
        var index = 0
        while index + 8 <= bytes.count {
            let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
            let control = below(0x20, in: word)
            let quote = below(1, in: word ^ (ones &* UInt64(UInt8(ascii: "\""))))
            let backslash = below(1, in: word ^ (ones &* UInt64(UInt8(ascii: "\\"))))
            if control | quote | backslash != 0 { return true }
            index += 8
        }
        while index < bytes.count {
            if needsEscape(base[index]) { return true }
            index += 1
        }
        return false
    }
}
