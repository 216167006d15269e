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
}
