import NIOCore
import NIOEmbedded

extension EmbeddedChannel {
    /// Delivers `text` as one read and runs what it set off.
    func send(_ text: String) {
        _ = try? writeInbound(ByteBuffer(string: text))
        embeddedEventLoop.run()
    }

    /// Everything written to the client since the last call, as text.
    func writtenText() throws -> String {
        var output = ""
        while let chunk = try readOutbound(as: ByteBuffer.self) { output += String(buffer: chunk) }
        return output
    }
}
