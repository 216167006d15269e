/// Reads an integer from a query string exactly as pydantic v2 does in lax mode (`str_as_int` in
/// pydantic-core): surrounding white space ignored, an optional sign, ASCII digits with single `_`
/// between them, leading zeros allowed, and a fractional part accepted only when it is all zeros
/// (`1.0`, `1.`). Values of any length are read, so range checks never overflow.
public enum LaxInteger {
    /// pydantic-core refuses longer strings with `int_parsing_size` before reading them.
    public static let maximumLength = 4300

    /// What reading a string gave.
    public enum Outcome: Hashable, Sendable {
        /// The value in canonical form: no sign unless negative, no leading zeros, no `_`.
        case value(String)
        /// `int_parsing`: not an integer.
        case notAnInteger
        /// `int_parsing_size`: longer than ``maximumLength`` once trimmed.
        case tooLong
    }

    /// Reads `input`.
    public static func parse(_ input: String) -> Outcome {
        if let plain = plainDigits(input) { return .value(plain) }
        let scalars = Array(input.unicodeScalars)
        var start = 0
        var end = scalars.count
        // Rust's `str::trim`: Unicode White_Space.
        while start < end, scalars[start].properties.isWhitespace { start += 1 }
        while end > start, scalars[end - 1].properties.isWhitespace { end -= 1 }
        let trimmed = scalars[start..<end]
        let trimmedByteCount = trimmed.reduce(0) { $0 + UTF8.width($1) }
        if trimmedByteCount > maximumLength { return .tooLong }

        if let value = canonicalDecimal(trimmed) { return .value(value) }
        // `strip_decimal_zeros`: "12.000" and "12." are read as "12".
        if let dot = trimmed.firstIndex(of: ".") {
            let fraction = trimmed[trimmed.index(after: dot)...]
            if fraction.allSatisfy({ $0 == "0" }), let value = canonicalDecimal(trimmed[..<dot]) {
                return .value(value)
            }
        }
        return .notAnInteger
    }

    /// The common case without any Unicode work: 1 to 18 ASCII digits and nothing else.
    private static func plainDigits(_ input: String) -> String? {
        let utf8 = input.utf8
        guard !utf8.isEmpty, utf8.count <= 18,
            utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { return nil }
        guard utf8.first == UInt8(ascii: "0") else { return input }
        let significant = utf8.drop { $0 == UInt8(ascii: "0") }
        return significant.isEmpty ? "0" : String(decoding: significant, as: UTF8.self)
    }

    /// Python's `int(s)` for base 10, ASCII digits only; `nil` when it would raise.
    private static func canonicalDecimal(_ input: ArraySlice<Unicode.Scalar>) -> String? {
        var start = input.startIndex
        var end = input.endIndex
        while start < end, isPythonSpace(input[start]) { start += 1 }
        while end > start, isPythonSpace(input[end - 1]) { end -= 1 }
        guard start < end else { return nil }

        var negative = false
        if input[start] == "+" || input[start] == "-" {
            negative = input[start] == "-"
            start += 1
        }
        var digits: [UInt8] = []
        var previousWasDigit = false
        var index = start
        while index < end {
            let scalar = input[index]
            if scalar.isASCII, scalar.value >= 0x30, scalar.value <= 0x39 {
                if !(digits.isEmpty && scalar == "0") { digits.append(UInt8(scalar.value)) }
                previousWasDigit = true
            } else if scalar == "_", previousWasDigit, index + 1 < end {
                previousWasDigit = false
            } else {
                return nil
            }
            index += 1
        }
        // A trailing `_` or nothing after the sign leaves `previousWasDigit` false.
        guard previousWasDigit else { return nil }
        if digits.isEmpty { return "0" }
        return (negative ? "-" : "") + String(decoding: digits, as: UTF8.self)
    }

    /// Python's `str.isspace`, which `int()` strips: Unicode White_Space plus the separators U+001C–U+001F.
    private static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
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
