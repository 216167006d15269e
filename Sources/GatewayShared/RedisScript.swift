import Crypto
import NIOCore

/// A Lua script run by ``RedisClient/evaluate(_:keys:arguments:on:)``: its source and the SHA-1 Redis
/// knows it by, computed here so the script is sent in full only when Redis does not have it yet.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// The SHA-1 of ``source``, lowercase hexadecimal, as `SCRIPT LOAD` answers it.
    public let sha1: String

    /// A script of `source`.
    public init(_ source: String) {
        self.source = source
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        for byte in Insecure.SHA1.hash(data: Array(source.utf8)) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        self.sha1 = String(decoding: hex, as: UTF8.self)
    }
}

extension RedisClient {
    /// Runs `script` with `keys` and `arguments` by `EVALSHA`; when Redis answers `NOSCRIPT` (restarted,
    /// or its script cache flushed), once more by `EVAL`, which also stores the script for the next time.
    public func evaluate(
        _ script: RedisScript,
        keys: [RedisArgument],
        arguments: [RedisArgument],
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<RESPValue> {
        let tail: [RedisArgument] = [.integer(keys.count)] + keys + arguments
        return send(["EVALSHA", .string(script.sha1)] + tail, on: eventLoop).flatMapError { error in
            guard let message = (error as? RedisError)?.serverMessage, message.hasPrefix("NOSCRIPT") else {
                return eventLoop.makeFailedFuture(error)
            }
            return self.send(["EVAL", .string(script.source)] + tail, on: eventLoop)
        }
    }
}
