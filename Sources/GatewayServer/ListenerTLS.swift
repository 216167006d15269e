import GatewayCore
import NIOCore
import NIOSSL
import NIOTLS

/// A listener's TLS identity (`TLS_CERT_FILE`, `TLS_KEY_FILE`): the certificate chain and key, loaded and
/// checked, as the `NIOSSLContext` every new connection starts its handshake from. ``reload(_:)`` reads the
/// files again (on `SIGHUP`): new connections get the new identity, open ones keep the one they began with,
/// and a pair that does not load or does not match leaves the old one in force.
public final class ListenerTLS: Sendable {
    /// What was loaded: the context, and what an operator is told of the certificate.
    public struct Identity: Sendable {
        let context: NIOSSLContext
        /// The leaf certificate's common name and alternative names, as `check-config` prints them.
        public let subject: String
        /// When the leaf certificate expires, in seconds since 1970.
        public let notValidAfter: Int
        /// The settings it was loaded with.
        public let settings: ListenerTLSSettings
    }

    /// Why a pair cannot be used; names the key at fault and never holds what the key file holds.
    public struct LoadError: Error, Sendable, CustomStringConvertible {
        /// `TLS_CERT_FILE` or `TLS_KEY_FILE`.
        public let key: String
        public let problem: String
        public var description: String { "\(key) \(problem)" }
    }

    private let current: Locked<Identity>

    /// Loads the pair `settings` names; throws when it cannot be used.
    public init(_ settings: ListenerTLSSettings) throws(LoadError) {
        current = Locked(try Self.load(settings))
    }

    /// The identity new connections get.
    public var identity: Identity { current.withLock { $0 } }

    /// The context a new connection's handshake starts from.
    var context: NIOSSLContext { current.withLock { $0.context } }

    /// Loads the pair `settings` names and, if it can be used, makes it the one new connections get;
    /// otherwise the identity in force stays, and the error says why.
    @discardableResult
    public func reload(_ settings: ListenerTLSSettings) -> Result<Identity, LoadError> {
        do {
            let loaded = try Self.load(settings)
            current.withLock { $0 = loaded }
            return .success(loaded)
        } catch {
            return .failure(error)
        }
    }

    /// Reads and checks a pair. Blocking file I/O: at start, and on a reload, never on an event loop.
    public static func load(_ settings: ListenerTLSSettings) throws(LoadError) -> Identity {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(settings.certificateFile)
        } catch {
            throw LoadError(
                key: "TLS_CERT_FILE",
                problem: "cannot be read as PEM certificates (\(settings.certificateFile)): \(error)"
            )
        }
        guard let leaf = chain.first else {
            throw LoadError(key: "TLS_CERT_FILE", problem: "holds no certificate (\(settings.certificateFile))")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: settings.keyFile, format: .pem)
        } catch {
            // The error is BoringSSL's code, not the file's content.
            throw LoadError(
                key: "TLS_KEY_FILE",
                problem: "cannot be read as a PEM private key (\(settings.keyFile)): \(error)"
            )
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = settings.minimumVersion == .v1_3 ? .tlsv13 : .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        // TLS 1.2: forward secrecy and AEAD only (no static RSA key exchange, no CBC). TLS 1.3's suites are
        // all of that kind already.
        configuration.cipherSuites = Self.cipherSuites
        // A closing connection waits this long for the client's close_notify (NIOSSL's default is 5 s): a
        // shutdown or an idle close holds a connection slot no longer.
        configuration.shutdownTimeout = .seconds(1)
        let context: NIOSSLContext
        do {
            // BoringSSL refuses a key that is not the leaf certificate's here.
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw LoadError(
                key: "TLS_KEY_FILE",
                problem: "cannot be used with the certificate of TLS_CERT_FILE (\(settings.keyFile)); does the key "
                    + "match the certificate? \(error)"
            )
        }
        return Identity(
            context: context,
            subject: Self.subject(of: leaf),
            notValidAfter: Int(leaf.notValidAfter),
            settings: settings
        )
    }

    /// The TLS 1.2 cipher suites offered: ECDHE key exchange and AEAD ciphers only.
    static let cipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// `CN=name, DNS:alt, IP:alt` from NIOSSL's description of `certificate` (it exposes the common name
    /// no other way).
    static func subject(of certificate: NIOSSLCertificate) -> String {
        func field(_ name: String) -> String? {
            let text = certificate.description
            guard let start = text.firstRange(of: ";\(name)=") else { return nil }
            let rest = text[start.upperBound...]
            return String(rest.prefix { $0 != ";" && $0 != ">" })
        }
        var parts: [String] = []
        if let commonName = field("common_name") { parts.append("CN=\(commonName)") }
        if let alternatives = field("alternative_names"), !alternatives.isEmpty {
            parts.append("alternative names \(alternatives)")
        }
        return parts.isEmpty ? "(no common name or alternative names)" : parts.joined(separator: ", ")
    }
}

/// Closes a TLS connection whose handshake has not finished `timeout` after it was accepted, the head
/// timer's allowance (`REQUEST_HEAD_TIMEOUT_SECONDS`): a client that stalls its handshake holds a connection
/// no longer than one that stalls its request head. Removes itself once the handshake is done.
final class TLSHandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Passed on first: once removed, this handler's context no longer reaches the next handler.
        context.fireUserInboundEventTriggered(event)
        if case .handshakeCompleted = event as? TLSUserEvent {
            deadline?.cancel()
            deadline = nil
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard deadline == nil else { return }
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }
}

@available(*, unavailable)
extension TLSHandshakeDeadline: Sendable {}
