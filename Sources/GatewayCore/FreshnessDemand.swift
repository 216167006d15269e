/// What a client's `Cache-Control` request directives (RFC 9111, section 5.2.1) ask of the list route:
/// a page no older than some age, or only what the cache holds.
///
/// `no-cache` and `max-age=0` ask for a page fetched again; `max-age=N` for one at most N seconds old;
/// `only-if-cached` for no upstream request at all. Other directives (`max-stale`, `min-fresh`,
/// `no-store`, `no-transform`, extensions) are ignored, as a cache may.
public struct FreshnessDemand: Sendable, Hashable {
    /// The oldest page the client takes, in seconds; `0`: fetched again whatever the page's age; `nil`: any
    /// page the cache would serve.
    public var maxAge: Int?
    /// The client wants no upstream request: a page the cache cannot give is a 504.
    public var onlyIfCached: Bool

    /// Creates a demand.
    public init(maxAge: Int? = nil, onlyIfCached: Bool = false) {
        self.maxAge = maxAge
        self.onlyIfCached = onlyIfCached
    }

    /// No demand: the cache's own rules decide.
    public static let none = FreshnessDemand()

    /// Whether the cache's own rules decide alone.
    @inlinable public var isNone: Bool { maxAge == nil && !onlyIfCached }

    /// The demand of a `Cache-Control` field value. Directive names are case-insensitive; `max-age` takes
    /// delta-seconds, bare or quoted (larger than 2^31 is read as 2^31, as RFC 9111 section 1.2.2 asks);
    /// a `max-age` without a valid number is ignored. Given twice, the smaller `max-age` holds (the more
    /// restrictive, section 5.2).
    public init(cacheControl: String) {
        self.init()
        for directive in cacheControl.utf8.split(separator: UInt8(ascii: ",")) {
            let (name, argument) = Self.split(Self.trimmed(directive[...]))
            if Self.equalsIgnoringCase(name, "no-cache") {
                maxAge = 0
            } else if Self.equalsIgnoringCase(name, "only-if-cached") {
                onlyIfCached = true
            } else if Self.equalsIgnoringCase(name, "max-age"), let argument, let seconds = Self.deltaSeconds(argument)
            {
                maxAge = min(maxAge ?? seconds, seconds)
            }
        }
    }

    private typealias Bytes = Substring.UTF8View.SubSequence

    /// The directive's name and its argument after `=` (unquoted), if any.
    private static func split(_ directive: Bytes) -> (name: Bytes, argument: Bytes?) {
        guard let equals = directive.firstIndex(of: UInt8(ascii: "=")) else { return (directive, nil) }
        var argument = trimmed(directive[directive.index(after: equals)...])
        if argument.count >= 2, argument.first == UInt8(ascii: "\""), argument.last == UInt8(ascii: "\"") {
            argument = argument.dropFirst().dropLast()
        }
        return (trimmed(directive[..<equals]), argument)
    }

    private static func trimmed(_ bytes: Bytes) -> Bytes {
        var bytes = bytes
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes = bytes.dropLast() }
        return bytes
    }

    private static func equalsIgnoringCase(_ bytes: Bytes, _ name: StaticString) -> Bool {
        guard bytes.count == name.utf8CodeUnitCount else { return false }
        return zip(bytes, UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)).allSatisfy {
            ($0 | 0x20) == $1
        }
    }

    /// Delta-seconds: one or more digits, capped at 2^31.
    private static func deltaSeconds(_ bytes: Bytes) -> Int? {
        guard !bytes.isEmpty else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = min(1 << 31, value * 10 + Int(byte - UInt8(ascii: "0")))
        }
        return value
    }
}
