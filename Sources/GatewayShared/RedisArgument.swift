import NIOCore

/// One argument of a Redis command (the command's name included): bytes, however they were given.
///
/// Built from a `String`, an `Int`, a `ByteBuffer` or `[UInt8]`, and from literals:
/// `client.send(["SET", key, .bytes(page), "PX", 30_000], on: loop)`.
public struct RedisArgument: Sendable, Hashable {
    private enum Storage: Sendable, Hashable {
        case string(String)
        case integer(Int)
        case buffer(ByteBuffer)
        case array([UInt8])
    }

    private let storage: Storage

    /// A text argument, sent as its UTF-8 bytes.
    public static func string(_ text: String) -> RedisArgument { RedisArgument(storage: .string(text)) }

    /// An integer argument, sent in decimal.
    public static func integer(_ value: Int) -> RedisArgument { RedisArgument(storage: .integer(value)) }

    /// A binary argument: the readable bytes of `buffer`.
    public static func bytes(_ buffer: ByteBuffer) -> RedisArgument { RedisArgument(storage: .buffer(buffer)) }

    /// A binary argument.
    public static func bytes(_ bytes: [UInt8]) -> RedisArgument { RedisArgument(storage: .array(bytes)) }

    /// How many bytes the argument is on the wire (not counting RESP's framing).
    public var byteCount: Int {
        switch storage {
        case .string(let text): text.utf8.count
        case .integer(let value): String(value).utf8.count
        case .buffer(let buffer): buffer.readableBytes
        case .array(let bytes): bytes.count
        }
    }

    /// Appends the argument's bytes to `bytes`.
    func append(to bytes: inout [UInt8]) {
        switch storage {
        case .string(let text): bytes.append(contentsOf: text.utf8)
        case .integer(let value): bytes.append(contentsOf: String(value).utf8)
        case .buffer(let buffer): bytes.append(contentsOf: buffer.readableBytesView)
        case .array(let array): bytes.append(contentsOf: array)
        }
    }
}

extension RedisArgument: ExpressibleByStringLiteral {
    /// A text argument.
    public init(stringLiteral value: String) { self.storage = .string(value) }
}

extension RedisArgument: ExpressibleByIntegerLiteral {
    /// An integer argument.
    public init(integerLiteral value: Int) { self.storage = .integer(value) }
}

extension RedisArgument: CustomStringConvertible {
    /// The argument for a log line: text and integers as they are, binary as its length. Never used for an
    /// `AUTH` argument (the client does not log commands).
    public var description: String {
        switch storage {
        case .string(let text): text
        case .integer(let value): String(value)
        case .buffer(let buffer): "<\(buffer.readableBytes) bytes>"
        case .array(let bytes): "<\(bytes.count) bytes>"
        }
    }
}
