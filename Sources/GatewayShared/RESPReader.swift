import CHiredis
import CHiredisShim
import NIOCore

/// Reads replies out of the bytes a connection receives, with hiredis's reader: fed whatever arrived, it
/// gives back each complete reply, in order, and keeps a partial one for the next read.
///
/// Owns one `redisReader` (freed in `deinit`) and frees each reply object as soon as it is converted; no C
/// pointer leaves a method. Confined to its connection's event loop.
final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>

    /// A reader, or `nil` when hiredis cannot allocate one.
    init?() {
        guard let reader = redisReaderCreate() else { return nil }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Adds the readable bytes of `buffer` to what is waiting to be parsed.
    func feed(_ buffer: ByteBuffer) throws(RedisError) {
        guard buffer.readableBytes > 0 else { return }
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard status == REDIS_OK else { throw failure() }
    }

    /// The next complete reply, or `nil` when the bytes fed so far hold none.
    func next() throws(RedisError) -> RESPValue? {
        var object: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &object) == REDIS_OK else {
            if let object { freeReplyObject(object) }
            throw failure()
        }
        guard let object else { return nil }
        defer { freeReplyObject(object) }
        return Self.value(of: object.assumingMemoryBound(to: redisReply.self))
    }

    private func failure() -> RedisError {
        let detail = String(cString: gw_redis_reader_error(reader))
        return .protocolError(detail.isEmpty ? "unreadable reply" : detail)
    }

    /// The Swift value of one hiredis reply (its elements recursively: hiredis bounds the nesting depth).
    private static func value(of object: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let reply = object.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            return .bulkString(ByteBuffer(bytes: UnsafeRawBufferPointer(start: reply.str, count: reply.len)))
        case REDIS_REPLY_STATUS:
            return .simpleString(text(reply))
        case REDIS_REPLY_ERROR:
            return .error(text(reply))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(truncatingIfNeeded: reply.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            guard let elements = reply.element else { return .array([]) }
            var values: [RESPValue] = []
            values.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                guard let element = elements[index] else {
                    values.append(.null)
                    continue
                }
                values.append(value(of: element))
            }
            return .array(values)
        default:
            // RESP3 types, which a RESP2 connection (no `HELLO 3`) never receives; read as text if they come.
            guard reply.str != nil else { return .null }
            return .bulkString(ByteBuffer(bytes: UnsafeRawBufferPointer(start: reply.str, count: reply.len)))
        }
    }

    private static func text(_ reply: redisReply) -> String {
        String(decoding: UnsafeRawBufferPointer(start: reply.str, count: reply.len), as: UTF8.self)
    }
}

@available(*, unavailable)
extension RESPReader: Sendable {}
