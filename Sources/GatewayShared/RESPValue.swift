import NIOCore

/// One reply from Redis (RESP2): what a command answered, or one element of an array it answered.
///
/// An error reply reaches callers of ``RedisClient/send(_:on:)`` as a failed future
/// (``RedisError/server(_:)``), never as ``error(_:)``; the case exists for values nested in arrays (a
/// transaction's `EXEC`) and for the reader's own tests.
public enum RESPValue: Sendable, Hashable {
    /// A status reply such as `+OK` or `+PONG`.
    case simpleString(String)
    /// An error reply's text, such as `ERR unknown command` or `NOSCRIPT No matching script`.
    case error(String)
    /// An integer reply.
    case integer(Int)
    /// A bulk string: bytes, binary-safe.
    case bulkString(ByteBuffer)
    /// A nil bulk string or nil array: no such key, no such element.
    case null
    /// An array reply, whose elements are replies.
    case array([RESPValue])

    /// The integer this reply holds: an integer reply, or a bulk or simple string of decimal digits (as
    /// `GET` answers a counter set by `INCR`).
    public var int: Int? {
        switch self {
        case .integer(let value): value
        case .simpleString(let text): Int(text)
        case .bulkString(let bytes): Int(String(buffer: bytes))
        case .error, .null, .array: nil
        }
    }

    /// The text this reply holds: a simple string, or a bulk string's bytes read as UTF-8 (with invalid
    /// sequences replaced).
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(buffer: bytes)
        case .integer(let value): String(value)
        case .error, .null, .array: nil
        }
    }

    /// The bytes of a bulk string, or of a simple string's text.
    public var bytes: ByteBuffer? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let text): ByteBuffer(string: text)
        case .integer, .error, .null, .array: nil
        }
    }

    /// The elements of an array reply.
    public var array: [RESPValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Whether this is the nil reply.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension RESPValue: CustomStringConvertible {
    /// The reply as `redis-cli` would show it, with bulk strings shortened to their first 64 bytes (a page
    /// can be a megabyte).
    public var description: String {
        switch self {
        case .simpleString(let text): return text
        case .error(let text): return "(error) \(text)"
        case .integer(let value): return "(integer) \(value)"
        case .null: return "(nil)"
        case .bulkString(let bytes):
            let shown = String(decoding: bytes.readableBytesView.prefix(64), as: UTF8.self)
            return bytes.readableBytes > 64 ? "\"\(shown)\"… (\(bytes.readableBytes) bytes)" : "\"\(shown)\""
        case .array(let elements):
            return "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
