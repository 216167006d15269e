import GatewayCore
import GatewayShared
import GatewayTesting
import Logging
import NIOCore
import NIOPosix
import Testing

/// `rediss://`: the shared tier's connection over TLS, against a real `redis-server` speaking TLS with a
/// certificate `openssl` made for the test.
@Suite("Redis over TLS (rediss://)")
struct RedisTLSTests {
    private func client(_ url: String, tls: RedisTLS?) throws -> RedisClient {
        RedisClient(
            endpoint: try RedisEndpoint(url),
            timeout: .seconds(5),
            group: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "redis-tls-test"),
            reconnectInterval: .milliseconds(50),
            tls: tls
        )
    }

    /// With the server's certificate as the CA: commands go through, by address (checked against the
    /// certificate's IP) and by name (against its DNS name), with AUTH and SELECT first.
    @Test func commandsGoThroughTLSVerifiedByAddressAndByName() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let pair = try certificates.pair("redis")
        let server = try await RedisServer.start(password: "tls-redis-pass", tls: pair)
        let port = try #require(server.tlsPort)
        let tls = try RedisTLS(caFile: pair.certificateFile)

        for host in ["127.0.0.1", "localhost"] {
            let redis = try client("rediss://:tls-redis-pass@\(host):\(port)/3", tls: tls)
            #expect(try await redis.send(["SET", "k", .string(host)]) == .simpleString("OK"))
            #expect(try await redis.send(["GET", "k"]) == .bulkString(ByteBuffer(string: host)))
            await redis.shutdown()
        }
        await server.stop()
    }

    /// A certificate that does not chain to the CA, or a name it does not hold, fails every command: the
    /// connection never goes on in the clear, and never without checking.
    @Test func anUntrustedServerIsNeverSpokenTo() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let pair = try certificates.pair("redis")
        let other = try certificates.pair("other")
        let server = try await RedisServer.start(tls: pair)
        let port = try #require(server.tlsPort)

        let untrusted = try client("rediss://127.0.0.1:\(port)", tls: try RedisTLS(caFile: other.certificateFile))
        let refused = try #require(await redisError { try await untrusted.send(["PING"]) })
        #expect("\(refused)".contains("CERTIFICATE_VERIFY_FAILED"), "the certificate check refused it: \(refused)")
        await untrusted.shutdown()

        // A trusted certificate for another name: neither the address nor localhost will do.
        let elsewhere = try certificates.pair("elsewhere", alternativeNames: "DNS:elsewhere.example")
        let misnamedServer = try await RedisServer.start(tls: elsewhere)
        let misnamedPort = try #require(misnamedServer.tlsPort)
        for host in ["127.0.0.1", "localhost"] {
            let misnamed = try client(
                "rediss://\(host):\(misnamedPort)",
                tls: try RedisTLS(caFile: elsewhere.certificateFile)
            )
            let error = try #require(await redisError { try await misnamed.send(["PING"]) })
            #expect("\(error)".contains("failedToValidateHostname"), "the name check refused it: \(error)")
            await misnamed.shutdown()
        }
        await misnamedServer.stop()

        // rediss:// without a TLS context has no connection at all.
        let bare = try client("rediss://127.0.0.1:\(port)", tls: nil)
        let none = try #require(await redisError { try await bare.send(["PING"]) })
        #expect("\(none)".contains("needs TLS"), "\(none)")
        await bare.shutdown()
        await server.stop()
    }

    @Test func aCAFileThatIsNotPEMNamesItsKey() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        for path in [try certificates.file("junk.pem", "not a certificate"), "/nonexistent/ca.pem"] {
            #expect {
                _ = try RedisTLS(caFile: path)
            } throws: { error in
                (error as? RedisTLS.LoadError)?.key == "REDIS_TLS_CA_FILE"
            }
        }
        _ = try RedisTLS(caFile: nil)
    }
}
