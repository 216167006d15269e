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

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: []) }
}
