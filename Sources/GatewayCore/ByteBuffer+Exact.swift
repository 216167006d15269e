@_spi(CustomByteBufferAllocator) import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension ByteBuffer {
    /// The readable bytes in storage of exactly their size.
    ///
    /// ByteBuffer rounds every allocation up to a power of two, so a 10 KiB page read from the network
    /// occupies 16 KiB. For a page that may sit in the cache for minutes, one copy into memory of the right
    /// size is worth it: it is what keeps the cache's resident memory close to the bytes it holds.
    public func compacted() -> ByteBuffer {
        let count = readableBytes
        guard count > 0, capacity - count > count / 16, let memory = malloc(count) else { return self }
        withUnsafeReadableBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: count) }
        // The default allocator frees with free(), which matches the malloc above.
        return ByteBuffer(
            takingOwnershipOf: UnsafeMutableRawBufferPointer(start: memory, count: count),
            allocator: ByteBufferAllocator()
        )
    }
}
