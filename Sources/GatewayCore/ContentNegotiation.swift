/// How a stored page's bytes are coded.
public enum ContentCoding: Sendable, Hashable {
    /// As JSON, the way the upstream sends it to a client that asks for no coding.
    case identity
    /// gzip (RFC 1952).
    case gzip
}

/// What a list request's header fields ask of the answer: which form of the page (`Accept-Encoding`), and
/// whether the client's copy is still good (`If-None-Match`, `If-Modified-Since`), in which case the answer
/// is `304 Not Modified`.
public struct ContentNegotiation: Sendable, Hashable {
    /// The client takes gzip (RFC 9110, section 12.5.3).
    public var acceptsGzip: Bool
    /// The `If-None-Match` field value, lines joined.
    public var ifNoneMatch: String?
    /// The `If-Modified-Since` date, seconds since 1970; `nil` when absent or not a valid HTTP-date.
    public var ifModifiedSince: Int?

    /// A client that asks for the identity form and has no copy: what a request with none of the fields gets.
    public static let identity = ContentNegotiation(acceptsGzip: false)

    /// Creates a negotiation from its parts.
    public init(acceptsGzip: Bool, ifNoneMatch: String? = nil, ifModifiedSince: Int? = nil) {
        self.acceptsGzip = acceptsGzip
        self.ifNoneMatch = ifNoneMatch
        self.ifModifiedSince = ifModifiedSince
    }

    /// Reads the three fields as a request sent them (`nil`: absent). `now` (seconds since 1970) places
    /// an obsolete two-digit year.
    public init(acceptEncoding: String?, ifNoneMatch: String?, ifModifiedSince: String?, now: Int) {
        self.acceptsGzip = acceptEncoding.map(AcceptEncoding.allowsGzip) ?? false
        self.ifNoneMatch = ifNoneMatch
        // RFC 9110, section 13.1.3: ignored when not a valid HTTP-date (a list of two is not one).
        self.ifModifiedSince = ifModifiedSince.flatMap { HTTPDate.parse($0, now: now) }
    }

    /// Whether the client's copy of a page tagged `entityTag` (opaque tag with its quotes) and last
    /// modified at `lastModified` (seconds since 1970) is current, so the answer is `304`. `If-None-Match`,
    /// when present, decides alone (RFC 9110, section 13.2.2).
    public func isNotModified(entityTag: Substring, lastModified: Int) -> Bool {
        if let ifNoneMatch { return EntityTag.list(ifNoneMatch, matchesWeakly: entityTag) }
        if let ifModifiedSince { return lastModified <= ifModifiedSince }
        return false
    }

    /// Whether the request asks a condition at all (most do not: their answers skip the comparison).
    public var isConditional: Bool { ifNoneMatch != nil || ifModifiedSince != nil }
}

/// The `Accept-Encoding` field (RFC 9110, section 12.5.3).
public enum AcceptEncoding {
    /// Whether `value` allows gzip: `gzip` (or its alias `x-gzip`) with a weight above 0, or, when gzip is
    /// not named, `*` with a weight above 0. Names are case-insensitive; a member with a weight that is not
    /// a qvalue is ignored; an empty value allows only identity.
    public static func allowsGzip(_ value: String) -> Bool {
        var value = value
        // One pass over contiguous bytes, no array made: a hit of a gzip client reads this field.
        return value.withUTF8 { bytes in
            var named: Bool?
            var wildcard: Bool?
            var memberStart = 0
            while memberStart <= bytes.count {
                let memberEnd = (memberStart..<bytes.count).first { bytes[$0] == UInt8(ascii: ",") } ?? bytes.count
                let member = UnsafeBufferPointer(rebasing: bytes[memberStart..<memberEnd])
                memberStart = memberEnd + 1
                let codingEnd = member.firstIndex(of: UInt8(ascii: ";")) ?? member.endIndex
                let coding = trimmed(member[member.startIndex..<codingEnd])
                guard !coding.isEmpty else { continue }
                var weight: Int? = 1000
                var parameterStart = codingEnd
                while parameterStart < member.endIndex {
                    let from = parameterStart + 1
                    let parameterEnd = member[from...].firstIndex(of: UInt8(ascii: ";")) ?? member.endIndex
                    let parameter = trimmed(member[from..<parameterEnd])
                    parameterStart = parameterEnd
                    guard parameter.count >= 2, parameter[parameter.startIndex] | 0x20 == UInt8(ascii: "q"),
                        parameter[parameter.startIndex + 1] == UInt8(ascii: "=")
                    else { continue }
                    weight = qvalue(parameter.dropFirst(2))
                }
                guard let weight else { continue }
                if equalsIgnoringCase(coding, "gzip") || equalsIgnoringCase(coding, "x-gzip") {
                    // The first naming decides: a repeated name is a client's mistake, not a second chance.
                    if named == nil { named = weight > 0 }
                } else if coding.count == 1, coding[coding.startIndex] == UInt8(ascii: "*") {
                    if wildcard == nil { wildcard = weight > 0 }
                }
            }
            return named ?? wildcard ?? false
        }
    }

    /// A qvalue (`0`, `0.5`, `1.000`) in thousandths, or `nil` when it is not one.
    static func qvalue(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
        guard let first = bytes.first, first == UInt8(ascii: "0") || first == UInt8(ascii: "1") else { return nil }
        var thousandths = Int(first - UInt8(ascii: "0")) * 1000
        guard bytes.count > 1 else { return thousandths }
        guard bytes[bytes.startIndex + 1] == UInt8(ascii: "."), bytes.count <= 5 else { return nil }
        var scale = 100
        for digit in bytes.dropFirst(2) {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
            thousandths += Int(digit - UInt8(ascii: "0")) * scale
            scale /= 10
        }
        return thousandths <= 1000 ? thousandths : nil
    }

    private static func trimmed(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Slice<UnsafeBufferPointer<UInt8>> {
        var bytes = bytes
        while let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            bytes = bytes.dropFirst()
        }
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
            bytes = bytes.dropLast()
        }
        return bytes
    }

    private static func equalsIgnoringCase(
        _ bytes: Slice<UnsafeBufferPointer<UInt8>>,
        _ lowercase: StaticString
    ) -> Bool {
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        return bytes.count == expected.count
            && zip(bytes, expected).allSatisfy { byte, want in
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 == want : byte == want
            }
    }
}

/// Entity tags (RFC 9110, section 8.8.3) as `If-None-Match` lists them.
public enum EntityTag {
    /// Whether the `If-None-Match` value `list` names `tag` (an opaque tag, quotes included) by the weak
    /// comparison (a `W/` prefix on either side does not matter), or is `*`. A list that does not parse
    /// matches nothing: the answer is the page, never a wrong 304.
    public static func list(_ list: String, matchesWeakly tag: Substring) -> Bool {
        let bytes = Array(list.utf8)
        let wanted = Array((tag.hasPrefix("W/") ? tag.dropFirst(2) : tag).utf8)
        var index = 0
        func skipSeparators() {
            while index < bytes.count,
                bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t")
                    || bytes[index] == UInt8(ascii: ",")
            {
                index += 1
            }
        }
        skipSeparators()
        if index < bytes.count, bytes[index] == UInt8(ascii: "*") {
            index += 1
            skipSeparators()
            return index == bytes.count
        }
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "W"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "/") {
                index += 2
            }
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return false }
            let start = index
            index += 1
            while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                // etagc: %x21 / %x23-7E / obs-text; no space, no control character.
                guard bytes[index] == 0x21 || bytes[index] >= 0x23, bytes[index] != 0x7F else { return false }
                index += 1
            }
            guard index < bytes.count else { return false }
            index += 1
            if bytes[start..<index].elementsEqual(wanted) { return true }
            let before = index
            skipSeparators()
            // Members are separated by a comma.
            if index < bytes.count, !bytes[before..<index].contains(UInt8(ascii: ",")) { return false }
        }
        return false
    }
}

/// The HTTP-date (RFC 9110, section 5.6.7).
public enum HTTPDate {
    /// `seconds` since 1970 as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    public static func format(_ seconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let date = RetryAfter.civilDate(daysSinceEpoch: days)
        // 1970-01-01 was a Thursday.
        let weekday = ((days % 7) + 7 + 3) % 7
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        var year = String(date.year)
        while year.utf8.count < 4 { year = "0" + year }
        return "\(RetryAfter.shortDayNames[weekday]), \(two(date.day)) \(RetryAfter.monthNames[date.month - 1]) "
            + "\(year) \(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) GMT"
    }

    /// Seconds since 1970 for an HTTP-date in any of its three forms; `nil` when `text` is not one.
    public static func parse(_ text: String, now: Int) -> Int? {
        var trimmed = Substring(text)
        while trimmed.first == " " || trimmed.first == "\t" { trimmed.removeFirst() }
        while trimmed.last == " " || trimmed.last == "\t" { trimmed.removeLast() }
        return RetryAfter.httpDate(String(trimmed), now: now)
    }
}
