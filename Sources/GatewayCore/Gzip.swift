import CZlib

/// gzip (RFC 1952) through the system's zlib: a page compressed once, when stored, and an upstream's gzip
/// answer unpacked within a bound, so that a small stream that unpacks to gigabytes (a "gzip bomb") is
/// refused after the bound's worth of work, never held whole.
public enum Gzip {
    /// Why a stream could not be unpacked.
    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// It unpacks past the bound.
        case tooLarge(limit: Int)
        /// It ends before its last member does (a cut connection, a partial body).
        case truncated
        /// Not gzip, or damaged (a bad header, a checksum or length that does not match).
        case corrupt(String)

        public var description: String {
            switch self {
            case .tooLarge(let limit): return "unpacks to more than \(limit) bytes"
            case .truncated: return "the gzip stream ends early"
            case .corrupt(let detail): return "not a valid gzip stream: \(detail)"
            }
        }
    }

    /// `input` as one gzip member, at `level` (1, fastest, to 9, smallest); `nil` only if zlib fails (it
    /// cannot for valid arguments, but no `!` hides that).
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 9) -> [UInt8]? {
        var stream = z_stream()
        // 15 window bits plus 16: a gzip header and trailer rather than zlib's.
        guard
            deflateInit2_(
                &stream,
                level,
                Z_DEFLATED,
                15 + 16,
                9,
                Z_DEFAULT_STRATEGY,
                zlibVersion(),
                Int32(MemoryLayout<z_stream>.size)
            ) == Z_OK
        else { return nil }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var output = [UInt8](repeating: 0, count: bound)
        let status: Int32 = output.withUnsafeMutableBytes { out in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(input.count)
            stream.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(out.count)
            return deflate(&stream, Z_FINISH)
        }
        guard status == Z_STREAM_END else { return nil }
        output.removeSubrange(Int(stream.total_out)...)
        return output
    }

    /// The bytes `input` unpacks to, at most `limit` of them. Concatenated members (RFC 1952 allows them)
    /// are unpacked one after another; anything else after the last member is refused.
    public static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws(Failure) -> [UInt8] {
        try unpack(input, limit: limit).bytes
    }

    /// What ``decompress(_:limit:)`` unpacks, and how many members the stream held (some clients, httpx
    /// among them, read only the first).
    public static func unpack(
        _ input: UnsafeRawBufferPointer,
        limit: Int
    ) throws(Failure) -> (bytes: [UInt8], members: Int) {
        guard !input.isEmpty else { throw .truncated }
        var members = 1
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt("zlib could not start")
        }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        var output: [UInt8] = []
        // Unpacked a chunk at a time: at most one chunk past the bound is ever written.
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let (status, produced) = chunk.withUnsafeMutableBytes { out -> (Int32, Int) in
                stream.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(out.count)
                let status = inflate(&stream, Z_NO_FLUSH)
                return (status, out.count - Int(stream.avail_out))
            }
            if produced > 0 {
                guard output.count + produced <= limit else { throw .tooLarge(limit: limit) }
                output.append(contentsOf: chunk[..<produced])
            }
            switch status {
            case Z_STREAM_END:
                guard stream.avail_in > 0 else { return (output, members) }
                // Another member follows, or trailing bytes that are not one (its header check refuses them).
                guard inflateReset(&stream) == Z_OK else { throw .corrupt("zlib could not go on") }
                members += 1
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                // No progress possible with a whole chunk free: the input ran out inside a member.
                guard stream.avail_in == 0 else { throw .corrupt("no progress") }
                throw .truncated
            case Z_DATA_ERROR:
                throw .corrupt(stream.msg.map { String(cString: $0) } ?? "data error")
            default:
                throw .corrupt("zlib status \(status)")
            }
        }
    }
}
