/// Reads an integer from a query string exactly as pydantic v2 does in lax mode (`str_as_int` in
/// pydantic-core 2.50, with jiter's integer grammar).
///
/// pydantic reads a string in two passes, and both are reproduced here:
/// 1. the string as it is, as a JSON integer (`-`? then `0` or `[1-9][0-9]*`). A run of more than
///    ``maximumDigits`` digits is `int_parsing_size` at once, whatever follows it.
/// 2. if that fails, a cleaned copy (`clean_int_str`): Unicode white space trimmed, one leading `+`
///    dropped, a leading `-` set aside, leading zeros (and `_` among them) dropped, a fraction of zeros
///    (`.0`, `.00`, not `.`) dropped, single `_` between characters dropped. The copy is read as a JSON
///    integer again; if it was not changed at all, or does not read, the answer is `int_parsing`.
///
/// So `1.0`, `+5`, ` 007 ` and `1_0` are integers and `1.`, `1._0` and `\u{1C}5` are not. Values of any
/// length are read, so range checks never overflow.
public enum LaxInteger {
    /// jiter refuses a run of more digits than this with `int_parsing_size` (CPython's limit of 4300).
    public static let maximumDigits = 4300

    /// What reading a string gave.
    public enum Outcome: Hashable, Sendable {
        /// The value in canonical form: no sign unless negative, no leading zeros, no `_`.
        case value(String)
        /// `int_parsing`: not an integer.
        case notAnInteger
        /// `int_parsing_size`: the string as sent starts with a run of more than ``maximumDigits`` digits.
        case tooLong
    }

    /// Reads `input`.
    public static func parse(_ input: String) -> Outcome {
        if let plain = plainDigits(input) { return .value(plain) }
        let bytes = Array(input.utf8)
        switch jsonInteger(bytes[...]) {
        case .value(let value): return .value(value)
        case .tooManyDigits: return .tooLong
        case .invalid: break
        }
        guard let cleaned = cleaned(input), case .value(let value) = jsonInteger(cleaned[...]) else {
            return .notAnInteger
        }
        return .value(value)
    }

    /// The common case without any Unicode work: 1 to 18 ASCII digits and nothing else.
    private static func plainDigits(_ input: String) -> String? {
        let utf8 = input.utf8
        guard !utf8.isEmpty, utf8.count <= 18, utf8.allSatisfy(isDigit) else { return nil }
        guard utf8.first == UInt8(ascii: "0") else { return input }
        let significant = utf8.drop { $0 == UInt8(ascii: "0") }
        return significant.isEmpty ? "0" : String(decoding: significant, as: UTF8.self)
    }

    private enum JSONInteger {
        case value(String)
        case invalid
        case tooManyDigits
    }

    /// jiter's `NumberInt::try_from`: the whole of `bytes` as one JSON integer.
    private static func jsonInteger(_ bytes: ArraySlice<UInt8>) -> JSONInteger {
        var index = bytes.startIndex
        let negative = index < bytes.endIndex && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard index < bytes.endIndex else { return .invalid }
        if bytes[index] == UInt8(ascii: "0") {
            return index + 1 == bytes.endIndex ? .value("0") : .invalid
        }
        let digitsStart = index
        while index < bytes.endIndex, isDigit(bytes[index]) { index += 1 }
        // The run is measured before anything after it is looked at: `1…1x` of 4301 digits is too long.
        if index - digitsStart > maximumDigits { return .tooManyDigits }
        guard index > digitsStart, index == bytes.endIndex else { return .invalid }
        return .value(String(decoding: bytes[(negative ? digitsStart - 1 : digitsStart)...], as: UTF8.self))
    }

    /// pydantic-core's `clean_int_str`, on UTF-8 bytes; `nil` where it gives up or changes nothing.
    private static func cleaned(_ input: String) -> [UInt8]? {
        let scalars = input.unicodeScalars
        // Rust's `str::trim`: Unicode White_Space, nothing else (not U+001C–U+001F, not U+FEFF).
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return nil }
        var text = Array(String(scalars[first...last]).utf8)[...]

        if text.first == UInt8(ascii: "+") {
            text = text.dropFirst()
            if text.first == UInt8(ascii: "-") { return nil }
        }
        var negative = false
        if text.first == UInt8(ascii: "-") {
            text = text.dropFirst()
            if text.first == UInt8(ascii: "-") || text.first == UInt8(ascii: "+") { return nil }
            negative = true
        }
        guard let significant = strippingLeadingZeros(text) else { return nil }
        text = significant
        if let dot = text.firstIndex(of: UInt8(ascii: ".")) {
            let fraction = text[(dot + 1)...]
            if !fraction.isEmpty, fraction.allSatisfy({ $0 == UInt8(ascii: "0") }) { text = text[..<dot] }
        }
        let sign: [UInt8] = negative ? [UInt8(ascii: "-")] : []
        if let withoutUnderscores = strippingUnderscores(text) { return sign + withoutUnderscores }
        // Compared with the length of the input as sent, as pydantic-core does.
        if text.count == input.utf8.count { return nil }
        return sign + text
    }

    /// pydantic-core's `strip_leading_zeros`: keeps one zero of an all-zero run, and the zero before a `.`.
    private static func strippingLeadingZeros(_ text: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        guard let first = text.first else { return nil }
        if first != UInt8(ascii: "0") {
            return isNonZeroDigit(first) || first == UInt8(ascii: "-") ? text : nil
        }
        var index = text.startIndex + 1
        while index < text.endIndex {
            let byte = text[index]
            if byte == UInt8(ascii: "0") || byte == UInt8(ascii: "_") {
                index += 1
            } else if isNonZeroDigit(byte) || byte == UInt8(ascii: "-") {
                return text[index...]
            } else if byte == UInt8(ascii: ".") {
                return text[(index - 1)...]
            } else {
                return nil
            }
        }
        return text[(text.endIndex - 1)...]
    }

    /// pydantic-core's `strip_underscores`: `nil` unless every `_` stands alone between two characters.
    private static func strippingUnderscores(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        let underscore = UInt8(ascii: "_")
        guard text.first != underscore, text.last != underscore, text.contains(underscore) else { return nil }
        guard !zip(text, text.dropFirst()).contains(where: { $0 == underscore && $1 == underscore }) else {
            return nil
        }
        return text.filter { $0 != underscore }
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private static func isNonZeroDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "1") && byte <= UInt8(ascii: "9")
    }

    /// Compares a canonical integer (as ``parse(_:)`` returns it) with `bound`: negative, zero or positive.
    public static func compare(_ canonical: String, with bound: Int) -> Int {
        let boundText = String(bound)
        let lhsNegative = canonical.hasPrefix("-")
        let rhsNegative = bound < 0
        if lhsNegative != rhsNegative { return lhsNegative ? -1 : 1 }
        let lhsDigits = canonical.utf8.drop { $0 == UInt8(ascii: "-") }
        let rhsDigits = boundText.utf8.drop { $0 == UInt8(ascii: "-") }
        var magnitude: Int
        if lhsDigits.count != rhsDigits.count {
            magnitude = lhsDigits.count < rhsDigits.count ? -1 : 1
        } else if lhsDigits.elementsEqual(rhsDigits) {
            magnitude = 0
        } else {
            magnitude = lhsDigits.lexicographicallyPrecedes(rhsDigits) ? -1 : 1
        }
        if lhsNegative { magnitude = -magnitude }
        return magnitude
    }
}
