import Logging

/// One answered request, as the access log records it.
public struct AccessLogEntry: Sendable {
    public var requestID: String
    /// The client's address.
    public var client: String
    public var method: String
    /// The request target, as received.
    public var path: String
    public var status: Int
    /// What the cache did (``ResponseTrace``'s name for it).
    public var cache: String
    /// From the request's head to its answer.
    public var nanoseconds: UInt64
    /// The body's length.
    public var bytes: Int
    /// The team, when `CLIENTS_FILE` names one.
    public var team: String?
    /// The upstream's status and time, when the answer came from an upstream exchange.
    public var upstreamStatus: Int?
    public var upstreamNanoseconds: UInt64?

    /// An entry.
    public init(
        requestID: String,
        client: String,
        method: String,
        path: String,
        status: Int,
        cache: String,
        nanoseconds: UInt64,
        bytes: Int,
        team: String? = nil,
        upstreamStatus: Int? = nil,
        upstreamNanoseconds: UInt64? = nil
    ) {
        self.requestID = requestID
        self.client = client
        self.method = method
        self.path = path
        self.status = status
        self.cache = cache
        self.nanoseconds = nanoseconds
        self.bytes = bytes
        self.team = team
        self.upstreamStatus = upstreamStatus
        self.upstreamNanoseconds = upstreamNanoseconds
    }

    /// The log event's message.
    public static let message: Logger.Message = "request"

    /// The fields as metadata, every value a string, under the names the log line uses.
    public var metadata: Logger.Metadata {
        var metadata: Logger.Metadata = [:]
        forEachField { name, value in metadata[name.description] = .string(value) }
        return metadata
    }

    /// Calls `body` with each field's name and text, in the order of the names.
    func forEachField(_ body: (StaticString, String) -> Void) {
        body("bytes", String(bytes))
        body("cache", cache)
        body("client", client)
        body("duration_ms", Self.milliseconds(nanoseconds))
        body("method", method)
        body("path", path)
        body("request_id", requestID)
        body("status", String(status))
        if let team { body("team", team) }
        if let upstreamNanoseconds { body("upstream_ms", Self.milliseconds(upstreamNanoseconds)) }
        if let upstreamStatus { body("upstream_status", String(upstreamStatus)) }
    }

    /// Milliseconds with three decimals: `12.345`.
    static func milliseconds(_ nanoseconds: UInt64) -> String {
        let micros = nanoseconds / 1_000
        let fraction = micros % 1_000
        let padding = fraction < 10 ? "00" : fraction < 100 ? "0" : ""
        return "\(micros / 1_000)." + padding + String(fraction)
    }
}
