import GatewayCore
import NIOSSL

/// TLS for a `rediss://` endpoint: the client context every connection's handshake starts from, verifying
/// the server's certificate against `REDIS_TLS_CA_FILE` (a private CA, as managed Redis services use) or the
/// system's roots, and its name (or, for an address, its IP) against the endpoint's host.
public struct RedisTLS: Sendable {
    let context: NIOSSLContext

    /// Why the context cannot be made; names the key at fault.
    public struct LoadError: Error, Sendable, CustomStringConvertible {
        public let key: String
        public let problem: String
        public var description: String { "\(key) \(problem)" }
    }

    /// A context trusting the certificates in `caFile`, or the system's roots when it is `nil`. Blocking
    /// file I/O: at start only.
    public init(caFile: String?) throws(LoadError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile {
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw LoadError(
                    key: "REDIS_TLS_CA_FILE",
                    problem: "cannot be read as PEM certificates (\(caFile)): \(error)"
                )
            }
            guard !certificates.isEmpty else {
                throw LoadError(key: "REDIS_TLS_CA_FILE", problem: "holds no certificate (\(caFile))")
            }
            configuration.trustRoots = .certificates(certificates)
        }
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw LoadError(key: "REDIS_TLS_CA_FILE", problem: "cannot be used: \(error)")
        }
    }

    /// The name to ask for and verify: the host, unless it is an address (then the certificate must name
    /// that address, which NIOSSL checks against the connected peer).
    static func serverHostname(_ host: String) -> String? {
        let isAddress = host.contains(":") || host.utf8.allSatisfy { $0 == UInt8(ascii: ".") || ($0 >= 48 && $0 <= 57) }
        return isAddress ? nil : host
    }
}
