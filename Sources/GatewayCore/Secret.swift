/// A secret string (the upstream API key): its value is reachable only through ``revealed``, and every
/// way of printing it (`description`, `debugDescription`, string interpolation, dumps) shows a placeholder.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The value itself, for the one place that must send it.
    public let revealed: String

    /// Wraps `value`.
    public init(_ value: String) { self.revealed = value }

    /// The SHA-256 of the value, hexadecimal: an identity that can be stored and compared, not reversed.
    public var fingerprint: String { SHA256.hexDigest(revealed.utf8) }

    /// Whether `candidate` is this secret, in time that depends only on their lengths, so a client cannot
    /// learn the secret byte by byte from how long refusals take.
    public func matches(_ candidate: some StringProtocol) -> Bool {
        let expected = Array(revealed.utf8)
        let given = Array(candidate.utf8)
        var difference = UInt8(expected.count == given.count ? 0 : 1)
        for index in 0..<max(expected.count, given.count) {
            let left = index < expected.count ? expected[index] : 0
            let right = index < given.count ? given[index] : 0
            difference |= left ^ right
        }
        return difference == 0
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: []) }
}
