/// A validated, normalised list query: one canonical value (or absence) per schema parameter.
///
/// Two queries the upstream would read the same way are equal and have the same ``canonicalQuery``;
/// two it would read differently never are.
public struct ListQuery: Sendable, Hashable {
    /// Canonical values indexed like ``ListQuerySchema/parameters``; defaults are filled in.
    public private(set) var values: [String?]

    // Swift's `String ==` treats canonically equivalent texts as equal ("é" and "e" + U+0301); the
    // upstream compares code points, so equality and hashing here go by UTF-8 bytes.
    public static func == (lhs: ListQuery, rhs: ListQuery) -> Bool {
        lhs.values.count == rhs.values.count
            && zip(lhs.values, rhs.values).allSatisfy { left, right in
                switch (left, right) {
                case (nil, nil): return true
                case (let left?, let right?): return left.utf8.elementsEqual(right.utf8)
                default: return false
                }
            }
    }

    public func hash(into hasher: inout Hasher) {
        for value in values {
            guard let value else {
                hasher.combine(0 as UInt8)
                continue
            }
            hasher.combine(1 as UInt8)
            hasher.combine(value.utf8.count)
            for byte in value.utf8 { hasher.combine(byte) }
        }
    }

    /// Why a query was refused.
    public enum Failure: Error, Hashable, Sendable {
        /// The query could not be decoded at all (400).
        case malformed(FormDecoder.Failure)
        /// The query failed the schema (422), with one issue per failing parameter.
        case invalid([ValidationIssue])
    }

    /// The value of the parameter named `name`, canonical; `nil` when absent.
    public subscript(name: String) -> String? {
        guard let index = ListQuerySchema.index(of: name) else { return nil }
        return values[index]
    }

    /// Parses the query part of a request target (after `?`), validating it against the schema.
    public static func parse(_ query: Substring) throws(Failure) -> ListQuery {
        let pairs: [(name: String, value: String)]
        do {
            pairs = try FormDecoder.decode(query)
        } catch {
            throw .malformed(error)
        }

        let parameters = ListQuerySchema.parameters
        var raw = [String?](repeating: nil, count: parameters.count)
        // Unknown names in order of first appearance, each with its last value, like a Python dict.
        var extras: [(name: String, value: String)] = []
        for pair in pairs {
            if let index = ListQuerySchema.index(of: pair.name) {
                raw[index] = pair.value
            } else if let existing = extras.firstIndex(where: { $0.name == pair.name }) {
                extras[existing].value = pair.value
            } else {
                extras.append(pair)
            }
        }

        var values = [String?](repeating: nil, count: parameters.count)
        var issues: [ValidationIssue] = []
        for (index, parameter) in parameters.enumerated() {
            guard let input = raw[index] else {
                values[index] = parameter.defaultValue
                continue
            }
            switch parameter.kind {
            case .string:
                values[index] = input
            case .integer(let minimum, let maximum):
                switch LaxInteger.parse(input) {
                case .notAnInteger:
                    issues.append(.intParsing(parameter.name, input))
                case .tooLong:
                    issues.append(.intParsingSize(parameter.name, input))
                case .value(let canonical):
                    if let minimum, LaxInteger.compare(canonical, with: minimum) < 0 {
                        issues.append(.greaterThanEqual(parameter.name, input, minimum))
                    } else if let maximum, LaxInteger.compare(canonical, with: maximum) > 0 {
                        issues.append(.lessThanEqual(parameter.name, input, maximum))
                    } else {
                        values[index] = canonical
                    }
                }
            }
        }
        issues += extras.map { ValidationIssue.extraForbidden($0.name, $0.value) }
        guard issues.isEmpty else { throw .invalid(issues) }
        return ListQuery(values: values)
    }

    /// The canonical query string: present parameters in schema order, values percent-encoded so that
    /// no value can add or change a parameter. It is both the cache key's text and what is sent upstream.
    public var canonicalQuery: String {
        var text = ""
        for (index, parameter) in ListQuerySchema.parameters.enumerated() {
            guard let value = values[index] else { continue }
            if !text.isEmpty { text += "&" }
            text += parameter.name + "=" + PercentEncoding.encode(value)
        }
        return text
    }
}

/// Percent-encoding of query values: everything but RFC 3986's unreserved characters is escaped.
public enum PercentEncoding {
    /// `value` with every byte outside `A-Z a-z 0-9 - . _ ~` written as `%XX`.
    public static func encode(_ value: String) -> String {
        if value.utf8.allSatisfy(isUnreserved) { return value }
        let hex: [UInt8] = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(value.utf8.count)
        for byte in value.utf8 {
            if isUnreserved(byte) {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The value of one hexadecimal digit, either case.
    public static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Whether `byte` is one of RFC 3986's unreserved characters: `A-Z a-z 0-9 - . _ ~`.
    public static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
