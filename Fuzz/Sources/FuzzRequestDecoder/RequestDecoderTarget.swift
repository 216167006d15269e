import GatewayServer
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// libFuzzer's entry point: the gateway's ``RequestDecoder`` against NIO's `HTTPRequestDecoder` (llhttp) on
/// the same bytes, cut into the same reads. Where both decode a request, they must agree on its head, its
/// body and where it ends; where only one refuses, the reason must be a ``DeliberateDifference``.
///
/// The first four bytes choose where the rest is cut (two 16-bit offsets, so 1 to 3 reads); the rest is
/// what a client sends on one connection.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let reads = DecoderInput.reads(of: input)
    let ours = Decoded.run(reads, through: RequestDecoder(maxHeadBytes: 16384, headTimeout: .seconds(10)))
    var limits = NIOHTTPDecoderLimitConfiguration()
    limits.maxHeaderFieldSize = 16384
    limits.maxHeaderListSize = 16384
    limits.maxHeaderFieldCount = 256
    var nio = Decoded.run(
        reads,
        through: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits))
    )
    // llhttp keeps a value's trailing spaces and tabs; ours trims them. They are optional whitespace around
    // the value, not part of it (RFC 9110, 5.5), and neither decoder frames a request by the header's text
    // after this, so NIO's values are compared without them.
    for index in nio.requests.indices {
        nio.requests[index].headerValues = nio.requests[index].headerValues.map { $0.droppingTrailingWhitespace() }
    }
    if let disagreement = Decoded.disagreement(ours: ours, nio: nio, payload: reads.flatMap { $0 }) {
        fatalError(
            """
            RequestDecoder and NIO's HTTPRequestDecoder disagree: \(disagreement)
            reads (hex): \(reads.map(DecoderInput.hex))
            ours: \(ours)
            NIO:  \(nio)
            """
        )
    }
    return 0
}

/// How a fuzz input becomes reads.
enum DecoderInput {
    /// The bytes after the first four, cut at the two offsets those four bytes give (each modulo the
    /// length plus one; empty reads are left out).
    static func reads(of input: [UInt8]) -> [[UInt8]] {
        guard input.count >= 4 else { return input.isEmpty ? [] : [input] }
        let payload = Array(input[4...])
        func offset(_ high: UInt8, _ low: UInt8) -> Int {
            (Int(high) << 8 | Int(low)) % (payload.count + 1)
        }
        let cuts = [offset(input[0], input[1]), offset(input[2], input[3])].sorted()
        let pieces = [payload[..<cuts[0]], payload[cuts[0]..<cuts[1]], payload[cuts[1]...]]
        return pieces.filter { !$0.isEmpty }.map { Array($0) }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]] }, as: UTF8.self)
    }
}

/// The requests one decoder produced from a connection's reads, and whether it reported an error.
struct Decoded: CustomStringConvertible {
    struct Request: Equatable, CustomStringConvertible {
        var method: String
        var uri: String
        var version: HTTPVersion
        var headerNames: [String]
        var headerValues: [String]
        /// Whether the connection stays open after it, as NIO reads `Connection` and the version.
        var keepAlive = true
        var body: [UInt8] = []
        var ended = false

        /// NIO (llhttp) stops parsing after a `CONNECT`, or a request with `Upgrade` and `Connection: upgrade`:
        /// what follows is another protocol.
        var switchesProtocol: Bool {
            if method == "CONNECT" { return true }
            let fields = zip(headerNames.map { $0.lowercased() }, headerValues)
            return fields.contains { $0.0 == "upgrade" }
                && fields.contains { name, value in
                    name == "connection"
                        && value.lowercased().split(separator: ",").contains {
                            $0.trimmingWhitespace() == "upgrade"
                        }
                }
        }

        func sameHead(as other: Request) -> Bool {
            method == other.method && uri == other.uri && version == other.version && headerNames == other.headerNames
                && headerValues == other.headerValues
        }

        var description: String {
            let headers = zip(headerNames, headerValues).map { "\($0): \($1)".debugDescription }
            let bodyText = String(decoding: body, as: UTF8.self).debugDescription
            return "\(method) \(uri.debugDescription) \(version) \(headers) body=\(bodyText)"
                + (ended ? "" : " (no end)")
        }
    }

    var requests: [Request] = []
    var errors: [String] = []
    /// A part that came out of order (a body or an end with no request under way).
    var misplaced = 0

    var failed: Bool { !errors.isEmpty }

    var description: String {
        "\(requests.count) request(s) \(requests) errors \(errors)"
            + (misplaced > 0 ? " misplaced parts \(misplaced)" : "")
    }

    /// Feeds `reads` to `decoder`, alone in an `EmbeddedChannel`, and collects what comes out.
    static func run(_ reads: [[UInt8]], through decoder: some ChannelInboundHandler) -> Decoded {
        let channel = EmbeddedChannel()
        let collector = Collector()
        do {
            try channel.pipeline.syncOperations.addHandler(decoder)
            try channel.pipeline.syncOperations.addHandler(collector)
        } catch {
            fatalError("set-up failed: \(error)")
        }
        for read in reads {
            channel.pipeline.fireChannelRead(ByteBuffer(bytes: read))
        }
        let decoded = collector.decoded
        _ = try? channel.finish(acceptAlreadyClosed: true)
        return decoded
    }

    /// Why the two disagree, or `nil` when they agree on every request both decoded.
    ///
    /// Where only one reports an error, that is a finding unless ``DeliberateDifference`` names the reason:
    /// ours is stricter by design (bare LF, obs-fold, control characters, any Transfer-Encoding but one
    /// `chunked`, Host, chunk-size lines, a head over 16384 bytes as a whole, ...), and NIO refuses what
    /// ours accepts in three places (a repeated equal Content-Length, methods llhttp does not know, data
    /// after `Connection: close`). Requests are then compared up to where the first error fell. Trailers are
    /// not compared: ours drops them.
    static func disagreement(ours: Decoded, nio: Decoded, payload: [UInt8]) -> String? {
        if ours.misplaced > 0 { return "ours handed on a body or end outside a request" }
        if nio.misplaced > 0 { return "NIO handed on a body or end outside a request" }
        if ours.failed, !nio.failed, DeliberateDifference.oursOnly(payload: payload, ours: ours, nio: nio) == nil {
            return "only ours refused, for no listed reason"
        }
        if nio.failed, !ours.failed, !nio.requests.contains(where: \.switchesProtocol),
            DeliberateDifference.nioOnly(payload: payload, ours: ours, nio: nio) == nil
        {
            return "only NIO refused, for no listed reason"
        }
        for index in 0..<min(ours.requests.count, nio.requests.count) {
            let mine = ours.requests[index]
            let theirs = nio.requests[index]
            guard mine.sameHead(as: theirs) else { return "request \(index): heads differ" }
            // NIO hands on nothing after a protocol switch; ours reads on (the gateway answers it as HTTP).
            if theirs.switchesProtocol { return nil }
            switch (mine.ended, theirs.ended) {
            case (true, true):
                guard mine.body == theirs.body else { return "request \(index): bodies differ" }
            case (false, false):
                // Both still reading it (or one failed in it): what was handed on so far must agree.
                if !ours.failed && !nio.failed && mine.body != theirs.body {
                    return "request \(index): bodies so far differ"
                }
            case (true, false):
                // NIO has not reached the end ours saw: fine only when NIO stopped at an error in it.
                if !nio.failed { return "request \(index): ours ended it, NIO is still reading it" }
            case (false, true):
                if !ours.failed { return "request \(index): NIO ended it, ours is still reading it" }
            }
        }
        // One decoded more requests than the other without the other reporting an error: the other is still
        // reading a head (or body) that the first already saw end.
        if ours.requests.count > nio.requests.count && !nio.failed {
            return "ours decoded \(ours.requests.count) requests, NIO \(nio.requests.count) with no error"
        }
        if nio.requests.count > ours.requests.count && !ours.failed {
            return "NIO decoded \(nio.requests.count) requests, ours \(ours.requests.count) with no error"
        }
        return nil
    }
}

/// Keeps what reaches the end of the pipeline.
private final class Collector: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart

    private(set) var decoded = Decoded()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            decoded.requests.append(
                Decoded.Request(
                    method: head.method.rawValue,
                    uri: head.uri,
                    version: head.version,
                    headerNames: head.headers.map(\.name),
                    headerValues: head.headers.map(\.value),
                    keepAlive: head.isKeepAlive
                )
            )
        case .body(let buffer):
            guard let last = decoded.requests.indices.last, !decoded.requests[last].ended else {
                decoded.misplaced += 1
                return
            }
            decoded.requests[last].body += buffer.readableBytesView
        case .end:
            guard let last = decoded.requests.indices.last, !decoded.requests[last].ended else {
                decoded.misplaced += 1
                return
            }
            decoded.requests[last].ended = true
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        decoded.errors.append("\(error)")
    }
}

extension StringProtocol {
    /// Without spaces and tabs at the end.
    fileprivate func droppingTrailingWhitespace() -> String {
        var bytes = Array(utf8)
        while bytes.last == 0x20 || bytes.last == 0x09 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Without spaces and tabs at either end.
    fileprivate func trimmingWhitespace() -> String {
        String(droppingTrailingWhitespace().drop { $0 == " " || $0 == "\t" })
    }
}
