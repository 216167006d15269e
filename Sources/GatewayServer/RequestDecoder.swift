import NIOCore
import NIOHTTP1

/// ``RequestReader`` as a channel handler that hands on NIO's request parts: a head, its body in parts,
/// and its end, for each request in turn (pipelined requests included), as NIO's `HTTPRequestDecoder`
/// would.
///
/// The gateway's own connections read their requests with a ``RequestReader`` inside ``HTTPHandler``;
/// this handler is for whatever wants the same strict reading behind NIO's types (the fuzz target compares
/// it with NIO's decoder, and the decoder's tests read through it).
///
/// Errors are NIO's `HTTPParserError`s, fired through `errorCaught` as NIO's decoder would; after one,
/// nothing more is read from the connection.
public final class RequestDecoder: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = HTTPServerRequestPart

    private var reader: RequestReader

    /// A decoder refusing heads over `maxHeadBytes` or `maxHeaderCount` fields, and closing the connection
    /// when a head takes longer than `headTimeout` from its first byte.
    public init(maxHeadBytes: Int, maxHeaderCount: Int = 256, headTimeout: TimeAmount) {
        reader = RequestReader(maxHeadBytes: maxHeadBytes, maxHeaderCount: maxHeaderCount, headTimeout: headTimeout)
    }

    /// The bytes read but not yet used (the start of a request cut off by the end of a read).
    var unread: ByteBuffer? { reader.unread }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.append(unwrapInboundIn(data))
        do {
            // The handler after this one may close the channel while it takes a part; `channelInactive`
            // then closes the reader, which stops reading there.
            while let part = try reader.next(context: context) {
                switch part {
                case .request(let head):
                    context.fireChannelRead(wrapInboundOut(.head(head.nioHead)))
                    // Unless the channel closed while the head was taken.
                    if !reader.isClosed { context.fireChannelRead(wrapInboundOut(.end(nil))) }
                case .head(let head): context.fireChannelRead(wrapInboundOut(.head(head.nioHead)))
                case .body(let bytes): context.fireChannelRead(wrapInboundOut(.body(bytes)))
                case .end: context.fireChannelRead(wrapInboundOut(.end(nil)))
                }
            }
        } catch {
            context.fireErrorCaught(error)
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        reader.close()
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension RequestDecoder: Sendable {}
