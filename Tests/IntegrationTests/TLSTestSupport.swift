import Foundation
import GatewayCore
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Certificates for the TLS tests, made by `openssl` in a folder of their own: self-signed, for
/// `localhost` and `127.0.0.1`.
struct TestCertificates {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("xi-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// A new pair whose certificate's common name is `name`: its settings, and the certificate's path (a
    /// client trusts it as its own root).
    func pair(_ name: String, days: Int = 30) throws -> ListenerTLSSettings {
        let certificate = directory.appendingPathComponent("\(name).crt").path
        let key = directory.appendingPathComponent("\(name).key").path
        try Self.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key, "-out", certificate, "-days", "\(days)", "-subj", "/CN=\(name)",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ]
        )
        return ListenerTLSSettings(certificateFile: certificate, keyFile: key)
    }

    /// A file holding `text`.
    func file(_ name: String, _ text: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The certificates of `pairs` in one file: what a client trusts to accept any of them.
    func roots(_ pairs: ListenerTLSSettings...) throws -> String {
        let text = try pairs.map { try String(contentsOfFile: $0.certificateFile, encoding: .utf8) }.joined()
        return try file("roots-\(UUID().uuidString).pem", text)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    /// Runs `executable` and returns its exit status, standard output and standard error.
    @discardableResult
    static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil
    ) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // What these tools print is far below a pipe's buffer: one pipe read after the other cannot block.
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: outputData, as: UTF8.self),
            String(decoding: errorData, as: UTF8.self)
        )
    }
}

/// An HTTP/1.1 client over TLS (swift-nio-ssl) that keeps its connection: it sends requests one at a time
/// and tells which certificate the server showed.
final class TLSTestClient: Sendable {
    private let channel: any Channel
    private let responses: ResponseCollector

    /// Connects to `127.0.0.1:port` trusting only the certificates in `roots`, and completes the handshake.
    static func connect(port: Int, roots: String) async throws -> TLSTestClient {
        var configuration = TLSConfiguration.makeClientConfiguration()
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
        while try await channel.nioSSL_peerCertificate().get() == nil, ContinuousClock.now < deadline {
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
