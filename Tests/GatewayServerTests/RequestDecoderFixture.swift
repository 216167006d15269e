import NIOCore
import NIOEmbedded
import NIOHTTP1

@testable import GatewayServer

/// One request as a decoder handed it on: its head, its body parts joined, and whether its end came.
struct DecodedRequest: Equatable, CustomStringConvertible {
    var method: String
    var uri: String
    var version: HTTPVersion
    /// Names and values exactly as decoded, in order.
    var headers: [[String]]
    var isKeepAlive: Bool
    var body: [UInt8] = []
    var ended = false

    init(head: HTTPRequestHead) {
        method = head.method.rawValue
        uri = head.uri
        version = head.version
        headers = head.headers.map { [$0.name, $0.value] }
        isKeepAlive = head.isKeepAlive
    }

    /// A complete request as a test expects it.
    init(
        _ method: String,
        _ uri: String,
        version: HTTPVersion = .http1_1,
        headers: [[String]] = [],
        body: String = "",
        keepAlive: Bool = true
    ) {
        self.method = method
        self.uri = uri
        self.version = version
        self.headers = headers
        self.isKeepAlive = keepAlive
        self.body = Array(body.utf8)
        self.ended = true
    }

    var description: String {
        "\(method) \(uri) \(version) \(headers) body=\(String(decoding: body, as: UTF8.self).debugDescription)"
            + (ended ? "" : " (no end)")
    }
}

/// Keeps every part and every error that reaches the end of the pipeline.
final class PartCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart

    private(set) var parts: [HTTPServerRequestPart] = []
    private(set) var errors: [any Error] = []
    /// Parts that arrived after the channel went inactive.
    private(set) var partsAfterInactive = 0
    private var inactive = false
    /// Called with each part as it arrives.
    var onPart: ((HTTPServerRequestPart, ChannelHandlerContext) -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        parts.append(part)
        if inactive { partsAfterInactive += 1 }
        onPart?(part, context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inactive = true
        context.fireChannelInactive()
    }
}

/// A ``RequestDecoder`` alone on an active `EmbeddedChannel`, with a ``PartCollector`` after it.
struct DecoderFixture {
    let channel = EmbeddedChannel()
    let decoder: RequestDecoder
    let collector = PartCollector()

    /// A decoder with the given limits; `maxHeaderCount` left out is the decoder's default.
    init(maxHeadBytes: Int = 16 * 1024, maxHeaderCount: Int? = nil, headTimeout: TimeAmount = .seconds(10)) throws {
        if let maxHeaderCount {
            decoder = RequestDecoder(
                maxHeadBytes: maxHeadBytes,
                maxHeaderCount: maxHeaderCount,
                headTimeout: headTimeout
            )
        } else {
            decoder = RequestDecoder(maxHeadBytes: maxHeadBytes, headTimeout: headTimeout)
        }
        try channel.pipeline.syncOperations.addHandler(decoder)
        try channel.pipeline.syncOperations.addHandler(collector)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    /// Delivers `bytes` as one read.
    func feed(_ bytes: some Collection<UInt8>) {
        guard channel.isActive else { return }
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        channel.pipeline.fireChannelRead(buffer)
    }

    /// Delivers `text` as one read.
    func feed(_ text: String) { feed(Array(text.utf8)) }

    /// Delivers `bytes` one byte per read.
    func feedBytewise(_ bytes: some Collection<UInt8>) {
        for byte in bytes { feed([byte]) }
    }

    /// Delivers `bytes` as reads cut at `cuts` (ascending offsets).
    func feed(_ bytes: [UInt8], cutAt cuts: [Int]) {
        var start = 0
        for cut in cuts + [bytes.count] {
            feed(bytes[start..<cut])
            start = cut
        }
    }

    /// The requests so far, built from the parts in order; a part out of place shows as a request named
    /// `MISPLACED` so that comparisons fail.
    var requests: [DecodedRequest] {
        var requests: [DecodedRequest] = []
        for part in collector.parts {
            switch part {
            case .head(let head):
                requests.append(DecodedRequest(head: head))
            case .body(let buffer):
                guard let last = requests.indices.last, !requests[last].ended else {
                    requests.append(DecodedRequest("MISPLACED", "body"))
                    continue
                }
                requests[last].body += buffer.readableBytesView
            case .end:
                guard let last = requests.indices.last, !requests[last].ended else {
                    requests.append(DecodedRequest("MISPLACED", "end"))
                    continue
                }
                requests[last].ended = true
            }
        }
        return requests
    }

    /// The errors reported, as NIO's parser errors (`nil` for any other kind).
    var errors: [HTTPParserError?] { collector.errors.map { $0 as? HTTPParserError } }

    /// The bytes the decoder keeps between reads.
    var retained: ByteBuffer? { decoder.unread }
}
