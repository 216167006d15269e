import GatewayCore
import NIOCore
import Testing

@Suite("ByteBuffer.compacted")
struct ByteBufferCompactedTests {
    @Test(arguments: [1, 100, 10_107, 70_000])
    func keepsTheBytesInStorageOfTheirSize(count: Int) {
        var original = ByteBufferAllocator().buffer(capacity: 0)
        original.writeBytes((0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) })

        let compacted = original.compacted()

        #expect(compacted == original)
        #expect(compacted.readableBytes == count)
        #expect(compacted.capacity <= count + count / 16)
        #expect(original.readableBytes == count)
    }

    @Test func aBufferThatIsAlreadyTightIsReturnedAsItIs() {
        let buffer = ByteBuffer(bytes: Array(repeating: UInt8(7), count: 1024))
        #expect(buffer.compacted().capacity == buffer.capacity)
    }

    @Test func anEmptyBufferStaysEmpty() {
        #expect(ByteBuffer().compacted().readableBytes == 0)
    }
}
