import GatewayCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A scriptable upstream on `127.0.0.1`, for tests and benchmarks: it answers each request with whatever
/// its script says (status, headers, body, delay, or a dropped connection) and records what it received.
public final class FakeUpstream: Sendable {
    /// What the fake does with one request.
    public struct Reply: Sendable {
        /// How the answer is delivered.
        public enum Delivery: Sendable {
            /// A complete response.
            case normal
            /// Close the connection without answering.
            case dropConnection
            /// Send the head and half the body, then close.
            case dropMidBody
        }

        public var status: Int
        public var headers: [(String, String)]
        public var body: String
        /// Bytes sent instead of `body` (a gzip stream, say), as they are.
        public var rawBody: [UInt8]?
        public var delay: TimeAmount
        public var delivery: Delivery
        /// Answers a control request (`/__...`), which is not counted.
        var isControl = false

        /// Creates a reply.
        public init(
            status: Int = 200,
            headers: [(String, String)] = [("Content-Type", "application/json")],
            body: String,
            delay: TimeAmount = .zero,
            delivery: Delivery = .normal
        ) {
            self.status = status
            self.headers = headers
            self.body = body
            self.delay = delay
            self.delivery = delivery
        }

        /// A `200` with a realistic page for `uri` (see ``FakeUpstream/page(for:)``).
        public static func page(for uri: String, delay: TimeAmount = .zero) -> Reply {
            Reply(body: FakeUpstream.page(for: uri), delay: delay)
        }
    }

    /// One request as the fake received it.
    public struct ReceivedRequest: Sendable {
        public var method: HTTPMethod
        public var uri: String
        public var headers: HTTPHeaders
        /// Which connection it came on, numbered from 1 in order of acceptance.
        public var connection: Int
        /// How many requests were being answered when this one arrived, itself included.
        public var concurrent: Int = 0
        /// The request body, as text.
        public var body: String = ""
    }

    private struct Record {
        var requests: [ReceivedRequest] = []
        var requestCount = 0
        var connections = 0
        var inFlight = 0
        var maxInFlight = 0
        var statuses: [Int: Int] = [:]
    }

    private let channel: any Channel
    private let group: any EventLoopGroup
    private let record = Locked(Record())
    private let script: @Sendable (ReceivedRequest) -> Reply
    private let recordRequests: Bool
    /// Answers a request whose `Accept-Encoding` names gzip in gzip, as the real upstream does, unless the
    /// reply names a `Content-Encoding` of its own or has a `rawBody`.
    let gzipsWhenAsked: Bool

    /// The port it listens on.
    public let port: Int

    /// `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Every request received so far, in order (none when started with `recordRequests: false`).
    public var requests: [ReceivedRequest] { record.withLock { $0.requests } }

    /// How many requests were received, recorded or not.
    public var requestCount: Int { record.withLock { $0.requestCount } }

    /// How many answers of each status were sent.
    public var statusCounts: [Int: Int] { record.withLock { $0.statuses } }

    /// Forgets the counts and the recorded requests.
    public func resetCounts() {
        record.withLock { record in
            record.requests = []
            record.requestCount = 0
            record.maxInFlight = record.inFlight
            record.statuses = [:]
        }
    }

    /// How many connections were accepted.
    public var connectionCount: Int { record.withLock { $0.connections } }

    /// The most requests that were being answered at once.
    public var maxConcurrentRequests: Int { record.withLock { $0.maxInFlight } }

    private init(
        channel: any Channel,
        group: any EventLoopGroup,
        recordRequests: Bool,
        gzipsWhenAsked: Bool,
        script: @escaping @Sendable (ReceivedRequest) -> Reply
    ) {
        self.gzipsWhenAsked = gzipsWhenAsked
        self.channel = channel
        self.group = group
        self.recordRequests = recordRequests
        self.script = script
        self.port = channel.localAddress?.port ?? 0
    }

    /// Starts a fake on `127.0.0.1` (port 0 picks a free one), answering with `script`. A long-running
    /// fake (a benchmark's) passes `recordRequests: false` so memory stays flat; it still counts.
    /// `gzipsWhenAsked`: a request that takes gzip gets it (see ``gzipsWhenAsked``).
    public static func start(
        port: Int = 0,
        threads: Int = 1,
        recordRequests: Bool = true,
        gzipsWhenAsked: Bool = true,
        script: @escaping @Sendable (ReceivedRequest) -> Reply = { .page(for: $0.uri) }
    ) async throws -> FakeUpstream {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let box = Locked<FakeUpstream?>(nil)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let upstream = box.withLock({ $0 }) else { throw ChannelError.ioOnClosedChannel }
                    let number = upstream.record.withLock { record in
                        record.connections += 1
                        return record.connections
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        FakeUpstreamHandler(upstream: upstream, connection: number)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        let upstream = FakeUpstream(
            channel: channel,
            group: group,
            recordRequests: recordRequests,
            gzipsWhenAsked: gzipsWhenAsked,
            script: script
        )
        box.withLock { $0 = upstream }
        return upstream
    }

    /// Stops listening and releases the fake's thread.
    public func shutdown() async throws {
        try? await channel.close()
        try await group.shutdownGracefully()
    }

    func received(_ request: ReceivedRequest) -> Reply {
        var request = request
        // Control requests of a benchmark's fake (`/__stats`, `/__reset`) are not counted.
        if request.uri.hasPrefix("/__") { return script(request) }
        record.withLock { record in
            record.inFlight += 1
            record.requestCount += 1
            record.maxInFlight = max(record.maxInFlight, record.inFlight)
            request.concurrent = record.inFlight
            if recordRequests { record.requests.append(request) }
        }
        return script(request)
    }

    func answered(status: Int) {
        record.withLock { record in
            record.inFlight -= 1
            record.statuses[status, default: 0] += 1
        }
    }

    /// A page in the upstream's shape whose items echo the query, so a test (or a soak) can tell which
    /// question a page answers: `page_size` items of about 330 bytes each, and `next_cursor`.
    public static func page(for uri: String) -> String {
        let query = uri.firstIndex(of: "?").map { String(uri[uri.index(after: $0)...]) } ?? ""
        var pageSize = 30
        var agent = "agent_default"
        if let parsed = try? ListQuery.parse(Substring(query)) {
            pageSize = parsed["page_size"].flatMap { Int($0) } ?? 30
            agent = parsed["agent_id"] ?? agent
        }
        let echo = JSONText.quoted(query)
        let agentText = JSONText.quoted(agent)
        var items: [String] = []
        for index in 0..<pageSize {
            items.append(
                "{\"id\":\"inv_\(index)\",\"created_at_unix_secs\":\(1_760_000_000 + index),"
                    + "\"test_run_count\":5,\"passed_count\":4,\"failed_count\":1,\"pending_count\":0,"
                    + "\"title\":\"Regression suite \(index)\",\"agent_id\":\(agentText),\"branch_id\":null,"
                    + "\"access_info\":{\"is_creator\":true,\"creator_name\":\"Test Runner\","
                    + "\"creator_email\":\"runner@example.com\",\"role\":\"admin\"},\"query\":\(echo)}"
            )
        }
        return "{\"results\":[" + items.joined(separator: ",") + "],\"has_more\":true,"
            + "\"meta\":{\"total\":1000,\"page\":1,\"page_size\":\(pageSize)},\"next_cursor\":\"cursor_after_\(pageSize)\"}"
    }
}

/// One connection of the fake: runs on its event loop only.
private final class FakeUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let upstream: FakeUpstream
    private let connection: Int
    private var head: HTTPRequestHead?
    private var body = ""

    init(upstream: FakeUpstream, connection: Int) {
        self.upstream = upstream
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = ""
        case .body(let chunk):
            body += String(buffer: chunk)
        case .end:
            guard let head else { return }
            self.head = nil
            var reply = upstream.received(
                FakeUpstream.ReceivedRequest(
                    method: head.method,
                    uri: head.uri,
                    headers: head.headers,
                    connection: connection,
                    body: body
                )
            )
            reply.isControl = head.uri.hasPrefix("/__")
            if upstream.gzipsWhenAsked, !reply.isControl, reply.rawBody == nil,
                !reply.headers.contains(where: { $0.0.lowercased() == "content-encoding" }),
                head.headers["accept-encoding"].contains(where: { $0.lowercased().contains("gzip") }),
                let packed = Array(reply.body.utf8).withUnsafeBytes({ Gzip.compress($0, level: 6) })
            {
                reply.rawBody = packed
                reply.headers.append(("Content-Encoding", "gzip"))
            }
            if reply.delay > .zero {
                context.eventLoop.assumeIsolated().scheduleTask(in: reply.delay) {
                    self.send(reply, keepAlive: head.isKeepAlive, context: context)
                }
            } else {
                send(reply, keepAlive: head.isKeepAlive, context: context)
            }
        }
    }

    private func send(_ reply: FakeUpstream.Reply, keepAlive: Bool, context: ChannelHandlerContext) {
        defer { if !reply.isControl { upstream.answered(status: reply.status) } }
        var body =
            reply.rawBody.map { context.channel.allocator.buffer(bytes: $0) }
            ?? context.channel.allocator.buffer(string: reply.body)
        var headers = HTTPHeaders(reply.headers)
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        let head = HTTPResponseHead(
            version: .http1_1,
            status: HTTPResponseStatus(statusCode: reply.status),
            headers: headers
        )
        switch reply.delivery {
        case .dropConnection:
            context.close(promise: nil)
        case .dropMidBody:
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            let half = body.readSlice(length: body.readableBytes / 2) ?? body
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(half))), promise: nil)
            context.close(promise: nil)
        case .normal:
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            if !keepAlive { context.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension FakeUpstreamHandler: Sendable {}
