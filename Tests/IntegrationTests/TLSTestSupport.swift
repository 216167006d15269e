import Foundation
import GatewayCore
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An HTTP/1.1 client over TLS (swift-nio-ssl) that keeps its connection: it sends requests one at a time
/// and tells which certificate the server showed.
final class TLSTestClient: Sendable {
    private let channel: any Channel
    private let responses: ResponseCollector

    /// Connects to `127.0.0.1:port` trusting only the certificates in `roots`, and completes the handshake.
    static func connect(
        port: Int,
        roots: String,
        maximumVersion: TLSVersion? = nil
    ) async throws -> TLSTestClient {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.maximumTLSVersion = maximumVersion
        configuration.trustRoots = .file(roots)
        configuration.applicationProtocols = ["http/1.1"]
        let context = try NIOSSLContext(configuration: configuration)
        let collector = ResponseCollector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    try operations.addHandler(NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    try operations.addHTTPClientHandlers()
                    try operations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        let client = TLSTestClient(channel: channel, responses: collector)
        // The connect completes before the handshake does: wait until the server's certificate is known.
        let deadline = ContinuousClock.now + .seconds(10)
        while try await channel.nioSSL_peerCertificate().get() == nil {
            guard ContinuousClock.now < deadline, channel.isActive else {
                await client.close()
                throw ChannelError.connectTimeout(.seconds(10))
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return client
    }

    private init(channel: any Channel, responses: ResponseCollector) {
        self.channel = channel
        self.responses = responses
    }

    /// The common name of the certificate the server showed on this connection.
    func peerCommonName() async throws -> String? {
        let certificate = try await channel.nioSSL_peerCertificate().get()
        return certificate.map { String(describing: $0) }.flatMap { text in
            text.firstRange(of: "common_name=").map { String(text[$0.upperBound...].prefix { $0 != ";" && $0 != ">" }) }
        }
    }

    /// Sends `GET target` and waits for the answer: its status and body.
    func get(_ target: String) async throws -> (status: Int, body: String) {
        let promise = channel.eventLoop.makePromise(of: (Int, String).self)
        responses.expect(promise)
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
        head.headers.add(name: "Host", value: "localhost")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
        let (status, body) = try await promise.futureResult.get()
        return (status, body)
    }

    func close() async { try? await channel.close() }
}

/// Hands each whole response to the promise waiting for it.
private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    // Touched on the channel's event loop only, but for `expect`, which the lock covers.
    private let waiting = Locked<[EventLoopPromise<(Int, String)>]>([])
    private var status = 0
    private var body = ""

    func expect(_ promise: EventLoopPromise<(Int, String)>) { waiting.withLock { $0.append(promise) } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            body = ""
        case .body(let buffer):
            body += String(buffer: buffer)
        case .end:
            let promise = waiting.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            promise?.succeed((status, body))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        for promise in waiting.withLock({ waiting in
            defer { waiting = [] }
            return waiting
        }) {
            promise.fail(error)
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        for promise in waiting.withLock({ waiting in
            defer { waiting = [] }
            return waiting
        }) {
            promise.fail(ChannelError.ioOnClosedChannel)
        }
        context.fireChannelInactive()
    }
}
