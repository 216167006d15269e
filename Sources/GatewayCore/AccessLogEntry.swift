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
    /// Why the request was refused before it reached a route (`RefusalReason`), if it was.
    public var reason: String?
    /// The W3C trace id of an API request: the client's `traceparent`'s, or the one made for it.
    public var traceID: String?

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
        upstreamNanoseconds: UInt64? = nil,
        reason: String? = nil,
        traceID: String? = nil
    ) {
        self.traceID = traceID
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
        self.reason = reason
    }

    /// The log event's message.
    public static let message: Logger.Message = "request"

    /// The fields as metadata, under the names the log line uses: text as strings, numbers as
    /// ``JSONNumber``s (a JSON line writes them unquoted).
    public var metadata: Logger.Metadata {
        var metadata: Logger.Metadata = [:]
        forEachField { name, value in
            if case .text(let text) = value {
                metadata[name.description] = .string(text)
            } else {
                metadata[name.description] = .stringConvertible(JSONNumber(value.text))
            }
        }
        return metadata
    }

    /// Calls `body` with each field's name and value, in the order of the names.
    func forEachField(_ body: (StaticString, FieldValue) -> Void) {
        body("bytes", .integer(bytes))
        body("cache", .text(cache))
        body("client", .text(client))
        body("duration_ms", .milliseconds(nanoseconds))
        body("method", .text(method))
        body("path", .text(path))
        if let reason { body("reason", .text(reason)) }
        body("request_id", .text(requestID))
        body("status", .integer(status))
        if let team { body("team", .text(team)) }
        if let traceID { body("trace_id", .text(traceID)) }
        if let upstreamNanoseconds { body("upstream_ms", .milliseconds(upstreamNanoseconds)) }
        if let upstreamStatus { body("upstream_status", .integer(upstreamStatus)) }
    }

    /// A field's value: text, or a number, which the log handler writes digit by digit instead of making
    /// a string of it first. In a JSON line, text is a string and a number a number.
    enum FieldValue: Equatable {
        case text(String)
        case integer(Int)
        /// A duration in nanoseconds, shown in milliseconds with three decimals: `12.345`.
        case milliseconds(UInt64)

        /// The value as the log shows it.
        var text: String {
            if case .text(let text) = self { return text }
            var bytes: [UInt8] = []
            appendNumber(to: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }

        /// Appends the value as JSON: text as a string literal (as ``JSONText/appendQuoted(_:to:)`` would),
        /// a number as a number.
        func appendJSON(to output: inout [UInt8]) {
            if case .text(let text) = self {
                JSONText.appendQuoted(text, to: &output)
                return
            }
            appendNumber(to: &output)
        }

        /// Appends a number's text; the one place numbers are formatted, for the line and for ``text``.
        private func appendNumber(to output: inout [UInt8]) {
            switch self {
            case .text:
                break
            case .integer(let value):
                if value < 0 { output.append(UInt8(ascii: "-")) }
                Self.appendDecimal(value.magnitude, to: &output)
            case .milliseconds(let nanoseconds):
                let micros = nanoseconds / 1_000
                Self.appendDecimal(micros / 1_000, to: &output)
                output.append(UInt8(ascii: "."))
                Self.appendDecimal(micros % 1_000, minimumDigits: 3, to: &output)
            }
        }

        /// `value`'s decimal digits, zero-padded to `minimumDigits`.
        private static func appendDecimal<Value: UnsignedInteger & FixedWidthInteger>(
            _ value: Value,
            minimumDigits: Int = 1,
            to output: inout [UInt8]
        ) {
            // 20 digits hold the largest 64-bit value.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
                var rest = value
                var start = digits.count
                repeat {
                    start -= 1
                    digits[start] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                    rest /= 10
                } while rest > 0 || digits.count - start < minimumDigits
                output.append(contentsOf: UnsafeMutableBufferPointer(rebasing: digits[start...]))
            }
        }
    }
}

/// A number in log metadata, already written as JSON's number syntax (`200`, `0.412`): a JSON log line
/// writes it without quotes, a text line as it is.
public struct JSONNumber: CustomStringConvertible, Sendable {
    public let description: String

    public init(_ text: String) { self.description = text }
}
