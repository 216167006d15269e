import CHiredisShim
import NIOCore

/// Encodes commands in RESP with hiredis's `redisFormatCommandArgv`: an array of bulk strings, binary-safe.
enum RESPCommand {
    /// The bytes of the command `arguments` (its name first), appended to `buffer`.
    static func encode(_ arguments: [RedisArgument], into buffer: inout ByteBuffer) throws(RedisError) {
        guard !arguments.isEmpty, arguments.count <= Int(Int32.max) else {
            throw .protocolError("a command needs between 1 and 2^31 arguments")
        }
        // All arguments in one array, so one pointer into it per argument stays valid for the whole call.
        var joined: [UInt8] = []
        joined.reserveCapacity(arguments.reduce(1) { $0 + $1.byteCount })
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            let before = joined.count
            argument.append(to: &joined)
            lengths.append(joined.count - before)
        }
        // Never empty, so the base address below is never nil (every argument may be "").
        joined.append(0)
        let written = joined.withUnsafeBufferPointer { bytes -> Bool in
            guard let base = UnsafeRawPointer(bytes.baseAddress) else { return false }
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(lengths.count)
            var offset = 0
            for length in lengths {
                pointers.append((base + offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            var command: UnsafeMutablePointer<CChar>?
            let count = pointers.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { argvlen in
                    gw_redis_format_command(&command, Int32(arguments.count), argv.baseAddress, argvlen.baseAddress)
                }
            }
            defer { gw_redis_free_command(command) }
            guard count > 0, let command else { return false }
            buffer.writeBytes(UnsafeRawBufferPointer(start: command, count: Int(count)))
            return true
        }
        guard written else { throw .protocolError("hiredis could not format the command (out of memory)") }
    }

    /// The bytes of the command `arguments` in a new buffer.
    static func encode(_ arguments: [RedisArgument]) throws(RedisError) -> ByteBuffer {
        var buffer = ByteBuffer()
        try encode(arguments, into: &buffer)
        return buffer
    }
}
