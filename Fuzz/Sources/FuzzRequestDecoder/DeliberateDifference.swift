import GatewayCore

/// Where only one decoder refuses a request, the difference must be one of these, each deliberate. Any
/// other one-sided refusal is a finding: the target stops with both decoders' views.
///
/// Where it can, a case is recognised from what the other decoder made of the request (its head); where
/// the bytes that differ never reach a head (line endings, folding), from the bytes sent.
enum DeliberateDifference: String, CaseIterable {
    // Ours refuses what NIO (llhttp) accepts: ours is stricter on purpose, wherever two parsers could
    // disagree on where a request ends or what it says.
    case bareLF = "ours refuses a line ending in a bare LF"
    /// llhttp skips any CRs and LFs before a request line; ours skips whole CR LF pairs only.
    case bareCR = "ours refuses a CR not followed by LF, before a request line or in it"
    case obsFold = "ours refuses a header folded over lines (obs-fold)"
    case whitespaceBeforeColon = "ours refuses whitespace between a header's name and its colon"
    case controlCharacter = "ours refuses control characters in the head"
    case requestLineSpacing = "ours requires exactly one space between the request line's parts"
    case transferEncodingOtherThanChunked = "ours accepts only one Transfer-Encoding, exactly `chunked`"
    case transferEncodingWithLength = "ours refuses Transfer-Encoding alongside Content-Length"
    case transferEncodingInHTTP10 = "ours refuses Transfer-Encoding in HTTP/1.0"
    case contentLengthNotPlainDigits = "ours accepts only 1 to 18 digits as Content-Length, and no conflict"
    case hostNotOneHostAndPort = "ours refuses two Host fields, or one that is not host[:port] (RFC 9112, 3.2)"
    case fragmentInTarget = "ours refuses `#` in the request target (RFC 9112, 3.2)"
    case versionOtherThan1x = "ours serves HTTP/1.0 and HTTP/1.1 only"
    case headSizeAsAWhole = "ours bounds the whole head (with empty lines before it), NIO each field"
    /// Chunk-size lines by the grammar (no whitespace; extensions `;name[=token|"quoted"]`; at most 15
    /// digits), and trailers as strictly as fields.
    case strictChunkedBody = "ours reads chunk-size lines and trailers strictly"
    // NIO refuses what ours accepts: each is harmless, since ours frames the request without ambiguity.
    case repeatedEqualContentLength = "NIO refuses a Content-Length repeated with the same value"
    case methodUnknownToLLHTTP = "NIO refuses methods llhttp does not know; ours takes any token (then 404/405)"
    case dataAfterConnectionClose = "NIO refuses bytes after a request that closes the connection"
    /// RFC 9110 (5.5): optional whitespace around a value is spaces and tabs; ours trims both.
    case tabAroundContentLength = "NIO refuses a tab in the whitespace around a Content-Length value"
    /// Ours checks the trailers as fields and drops them, so none can frame anything.
    case trailersDropped = "NIO refuses a last chunk or trailers after the whole body, which ours drops"
    /// Ours reads any visible bytes as the target (UTF-8 is checked with the query), and the router answers
    /// one that is not origin-form 400.
    case targetNotAURL = "NIO refuses a target llhttp cannot read as a URL"
    // Either way: one refused a request the other has not finished reading, so never handed on. Ours judges
    // a head once it is whole; llhttp part-way through.
    case notYetReadByTheOther = "the other decoder had not finished reading the request that one refused"

    /// Why ours refused what NIO decoded without error, if that is deliberate.
    static func oursOnly(payload: [UInt8], ours: Decoded, nio: Decoded) -> DeliberateDifference? {
        if containsBareLF(payload) { return .bareLF }
        if payload.indices.contains(where: {
            payload[$0] == 0x0D && ($0 + 1 == payload.count || payload[$0 + 1] != 0x0A)
        }) {
            return .bareCR
        }
        if contains(payload, [0x0D, 0x0A, 0x20]) || contains(payload, [0x0D, 0x0A, 0x09]) { return .obsFold }
        if contains(payload, [0x20, 0x3A]) || contains(payload, [0x09, 0x3A]) { return .whitespaceBeforeColon }
        if contains(payload, [0x20, 0x20]) || contains(payload, [0x20, 0x0D]) { return .requestLineSpacing }
        if payload.contains(where: { ($0 < 0x20 && $0 != 0x0D && $0 != 0x0A && $0 != 0x09) || $0 == 0x7F }) {
            return .controlCharacter
        }
        // The request ours refused is the first NIO decoded that ours did not finish.
        let index = ours.requests.firstIndex { !$0.ended } ?? ours.requests.count
        guard index < nio.requests.count else { return .notYetReadByTheOther }
        let request = nio.requests[index]
        let fields = zip(request.headerNames.map { $0.lowercased() }, request.headerValues).map { ($0, $1) }
        let encodings = fields.filter { $0.0 == "transfer-encoding" }
        let lengths = fields.filter { $0.0 == "content-length" }.map(\.1)
        if encodings.count > 1 || encodings.contains(where: { $0.1.lowercased() != "chunked" }) {
            return .transferEncodingOtherThanChunked
        }
        if !encodings.isEmpty, !lengths.isEmpty { return .transferEncodingWithLength }
        if !encodings.isEmpty, request.version == .http1_0 { return .transferEncodingInHTTP10 }
        if lengths.contains(where: { !(1...18).contains($0.utf8.count) || !$0.utf8.allSatisfy(isDigit) })
            || Set(lengths).count > 1
        {
            return .contentLengthNotPlainDigits
        }
        let hosts = fields.filter { $0.0 == "host" }.map(\.1)
        if hosts.count > 1 || hosts.contains(where: { !$0.utf8.allSatisfy(HeaderField.isHostByte) }) {
            return .hostNotOneHostAndPort
        }
        if request.uri.utf8.contains(UInt8(ascii: "#")) { return .fragmentInTarget }
        if request.version != .http1_1, request.version != .http1_0 { return .versionOtherThan1x }
        let headBytes =
            request.method.utf8.count + request.uri.utf8.count + 12
            + fields.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 }
        if headBytes > 16_384 - 512 || payload.count > 8192 { return .headSizeAsAWhole }
        if index < ours.requests.count, encodings.count == 1 { return .strictChunkedBody }
        return nil
    }

    /// Why NIO refused what ours decoded without error, if that is deliberate.
    static func nioOnly(payload: [UInt8], ours: Decoded, nio: Decoded) -> DeliberateDifference? {
        let index = nio.requests.firstIndex { !$0.ended } ?? nio.requests.count
        guard index < ours.requests.count, ours.requests[index].ended else { return .notYetReadByTheOther }
        for request in ours.requests[...index] {
            let lengths = zip(request.headerNames, request.headerValues).filter {
                $0.0.lowercased() == "content-length"
            }
            if lengths.count > 1 { return .repeatedEqualContentLength }
            if !llhttpMethods.contains(request.method) { return .methodUnknownToLLHTTP }
            if !request.uri.hasPrefix("/") || request.uri.hasPrefix("//")
                || request.uri.unicodeScalars.contains(where: { !$0.isASCII })
            {
                return .targetNotAURL
            }
        }
        let refused = ours.requests[index]
        if refused.headerNames.contains(where: { $0.lowercased() == "content-length" }), payload.contains(0x09) {
            return .tabAroundContentLength
        }
        // Ours ended a chunked request with all the body NIO had handed on when it failed: NIO refused what
        // follows the last chunk's data (the last chunk's line or a trailer), which ours reads strictly and
        // drops. Both framed the body the same way.
        if refused.headerNames.contains(where: { $0.lowercased() == "transfer-encoding" }), refused.ended,
            index < nio.requests.count, nio.requests[index].body == refused.body
        {
            return .trailersDropped
        }
        // A request before the one NIO refused closed the connection: NIO reads nothing after it.
        if ours.requests[..<index].contains(where: { !$0.keepAlive }) { return .dataAfterConnectionClose }
        return nil
    }

    /// The methods llhttp knows (llhttp's `HTTP_METHOD_MAP`).
    static let llhttpMethods: Set<String> = [
        "DELETE", "GET", "HEAD", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "COPY", "LOCK", "MKCOL", "MOVE",
        "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY",
        "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PATCH", "PURGE", "MKCALENDAR",
        "LINK", "UNLINK", "SOURCE", "QUERY",
    ]

    private static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }

    private static func containsBareLF(_ bytes: [UInt8]) -> Bool {
        bytes.indices.contains { bytes[$0] == 0x0A && ($0 == 0 || bytes[$0 - 1] != 0x0D) }
    }

    private static func contains(_ bytes: [UInt8], _ run: [UInt8]) -> Bool {
        guard bytes.count >= run.count else { return false }
        return (0...(bytes.count - run.count)).contains { bytes[$0..<($0 + run.count)].elementsEqual(run) }
    }
}
