/// Why a Redis command failed. Its texts never hold a password: the client's messages name the endpoint as
/// ``GatewayCore/RedisEndpoint/description`` shows it, and a refused `AUTH`'s reply is redacted.
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case timeout
        case connectionFailed(String)
        case closed
        case server(String)
        case protocolError(String)
    }

    private let code: Code

    private init(_ code: Code) { self.code = code }

    /// No answer within the client's timeout. The connection it was sent on has been closed, since the
    /// order of its replies can no longer be trusted.
    public static let timeout = RedisError(.timeout)

    /// The client was shut down, or the subscription cancelled.
    public static let closed = RedisError(.closed)

    /// The connection could not be made or ready (`AUTH` or `SELECT` refused), or was lost with the command
    /// still unanswered; `detail` says which.
    public static func connectionFailed(_ detail: String) -> RedisError { RedisError(.connectionFailed(detail)) }

    /// Redis answered with an error reply, `message` (such as `NOSCRIPT No matching script`).
    public static func server(_ message: String) -> RedisError { RedisError(.server(message)) }

    /// The bytes from Redis were not RESP; the connection has been closed.
    public static func protocolError(_ detail: String) -> RedisError { RedisError(.protocolError(detail)) }

    /// The error reply's text, when Redis answered with one.
    public var serverMessage: String? {
        if case .server(let message) = code { return message }
        return nil
    }

    /// Whether Redis itself answered (with an error reply), as opposed to not being reachable, slow or
    /// speaking nonsense: the command reached a working server.
    public var isServerReply: Bool { serverMessage != nil }

    /// Whether this is a timeout.
    public var isTimeout: Bool { code == .timeout }

    /// Whether the connection failed or was lost.
    public var isConnectionFailure: Bool {
        if case .connectionFailed = code { return true }
        return false
    }

    /// What went wrong, for a log line (never a password).
    public var description: String {
        switch code {
        case .timeout: "Redis did not answer in time"
        case .connectionFailed(let detail): "Redis connection failed: \(detail)"
        case .closed: "the Redis client is closed"
        case .server(let message): "Redis answered with an error: \(message)"
        case .protocolError(let detail): "Redis sent a malformed reply: \(detail)"
        }
    }

    /// A short fixed label for metrics and logs, one of a few.
    public var shortDescription: String {
        switch code {
        case .timeout: "timeout"
        case .connectionFailed: "connection_failed"
        case .closed: "closed"
        case .server(let message):
            // The error's prefix (`ERR`, `NOSCRIPT`, `WRONGTYPE`...) is Redis's own code; bounded in length and
            // in alphabet so a label cannot grow without bound.
            "server_" + String(message.prefix { $0.isASCII && ($0.isUppercase || $0 == "_") }.prefix(16))
        case .protocolError: "protocol_error"
        }
    }
}
