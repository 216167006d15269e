import NIOHTTP1

/// Why a request was refused before it reached a route: a bounded set of labels, for the access log's
/// `reason` and the `xi_gateway_refused_requests_total` counter. Smuggling attempts land here, so each
/// label names the rule, never the request's bytes.
public enum RefusalReason: String, Sendable, CaseIterable {
    case bareLF = "bare-lf"
    case foldedField = "folded-field"
    case invalidFieldName = "invalid-field-name"
    case invalidFieldValue = "invalid-field-value"
    case invalidRequestLine = "invalid-request-line"
    case invalidTarget = "invalid-target"
    case invalidVersion = "invalid-version"
    case invalidContentLength = "invalid-content-length"
    /// Two different `Content-Length`s, `Transfer-Encoding` with `Content-Length`, or chunked in HTTP/1.0.
    case conflictingLength = "conflicting-length"
    case unsupportedTransferEncoding = "unsupported-transfer-encoding"
    case invalidHost = "invalid-host"
    case missingHost = "missing-host"
    case invalidChunk = "invalid-chunk"
    case headTooLarge = "head-too-large"
    case tooManyFields = "too-many-fields"
    /// A chunk-size line or a trailer over its limit.
    case lineTooLong = "line-too-long"
    case bodyTooLarge = "body-too-large"
    case expectationFailed = "expectation-failed"
}

/// A refusal inside ``RequestReader``: the rule that refused, and the NIO parser error it is reported as.
struct RequestRefusal: Error {
    var reason: RefusalReason
    var error: HTTPParserError

    init(_ reason: RefusalReason, _ error: HTTPParserError) {
        self.reason = reason
        self.error = error
    }
}
