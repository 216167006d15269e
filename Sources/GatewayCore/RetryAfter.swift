/// Reads an HTTP `Retry-After` value (RFC 9110 §10.2.3): a number of seconds, or an HTTP date.
public enum RetryAfter {
    /// The delay `value` asks for, in whole seconds (0 or more); `nil` when it is neither form.
    /// `now` is the current time in seconds since 1970, for the date form.
    public static func seconds(from value: String, now: Int) -> Int? {
        let trimmed = value.trimmingASCIISpaces
        if !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            // Any number of digits: an absurd value is capped rather than refused.
            let significant = trimmed.drop { $0 == "0" }
            if significant.isEmpty { return 0 }
            return significant.utf8.count > 9 ? 999_999_999 : Int(significant)
        }
        guard let date = httpDate(trimmed, now: now) else { return nil }
        return max(0, date - now)
    }
}

extension String {
    var trimmingASCIISpaces: String {
        var scalars = Substring(self).unicodeScalars
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}
