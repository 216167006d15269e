import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import GatewayServer

/// Counts the flushes and the reads that reach the socket; sits at the front of the pipeline.
private final class FlushCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer

    private(set) var flushes = 0
    private(set) var reads = 0

    func flush(context: ChannelHandlerContext) {
        flushes += 1
        context.flush()
    }

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// The whole per-connection pipeline over an `EmbeddedChannel`, with an upstream that answers only when
/// the test says, forwarded routes on, and a flush counter in front.
private struct QueueFixture {
    static let list = "/v1/convai/test-invocations"

    let upstream = PendingUpstreamClient()
    let channel = EmbeddedChannel()
    let counter = FlushCounter()

    init(configuration: GatewayServer.Configuration = .init(host: "127.0.0.1", port: 0)) throws {
        func governor() -> UpstreamGovernor {
            UpstreamGovernor(
                configuration: .init(maxConcurrency: 4, maxQueue: 16, queueTimeout: .seconds(5), backoffMaxSeconds: 30)
            )
        }
        let cache = ResponseCache(maxBytes: 1 << 20, ttlSeconds: 30)
        let service = ListService(
            cache: cache,
            upstream: upstream,
            governor: governor(),
            apiKey: Secret("k"),
            waitLimit: .seconds(10),
            logger: Logger(label: "test")
        )
        let context = ServerContext(
            service: service,
            cache: cache,
            governor: governor(),
            settings: .init(accessLog: false, adminToken: nil),
            accessLogger: Logger(label: "test"),
            passthrough: PassthroughService(
                upstream: upstream,
                governor: governor(),
                cache: cache,
                budgets: TeamBudgets(),
                key: service.upstreamKey,
                logger: Logger(label: "test")
            )
        )
        try channel.pipeline.syncOperations.addHandler(counter)
        try GatewayServer.configurePipeline(
            channel.pipeline.syncOperations,
            configuration: configuration,
            context: context
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    /// Delivers `text` as one read.
    func send(_ text: String) { channel.send(text) }

    /// Everything flushed to the client since the last call.
    func output() throws -> String { try channel.writtenText() }

    /// Answers the open upstream request whose target contains `target` with the fake upstream's page.
    @discardableResult
    func answerUpstream(_ target: String, status: Int = 200) -> Bool {
        let answered = upstream.answer(
            .success(
                UpstreamResponse(
                    status: status,
                    headers: HTTPHeaders([("Content-Type", "application/json")]),
                    body: ByteBuffer(string: FakeUpstream.page(for: Self.list + "?" + target))
                )
            ),
            targetContaining: target
        )
        channel.embeddedEventLoop.run()
        return answered
    }

    func quiesce() {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.embeddedEventLoop.run()
    }

    /// Lets `seconds` pass on the connection's clock.
    func wait(_ seconds: Double) {
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(Int64(seconds * 1_000)))
    }
}

@Suite("HTTPHandler queueing, quiescing and flushing")
struct HTTPHandlerQueueTests {
    /// Heads get 10 s from their first byte; connections idle for 60 s close.
    static let tenSecondHeads = GatewayServer.Configuration(
        host: "127.0.0.1",
        port: 0,
        idleTimeout: .seconds(60),
        requestHeadTimeout: .seconds(10)
    )

    private let list = QueueFixture.list

    @Test func quiescingAnIdleConnectionClosesItAtOnce() throws {
        let connection = try QueueFixture()
        #expect(connection.channel.isActive)

        connection.quiesce()

        #expect(!connection.channel.isActive)
        #expect(try connection.output().isEmpty)
    }

    /// Between two requests of a keep-alive connection is idle too.
    @Test func quiescingAKeepAliveConnectionBetweenRequestsClosesIt() throws {
        let connection = try QueueFixture()
        connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try connection.output().hasPrefix("HTTP/1.1 200 OK"))
        #expect(connection.channel.isActive)

        connection.quiesce()

        #expect(!connection.channel.isActive)
    }

    @Test func quiescingWhileARequestWaitsAnswersItWithConnectionCloseAndDropsThePipeline() throws {
        let connection = try QueueFixture()
        connection.send(
            "GET \(list)?cursor=slow HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET \(list)?cursor=behind HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        #expect(connection.upstream.openTargets.count == 1)

        connection.quiesce()
        #expect(connection.channel.isActive)
        #expect(try connection.output().isEmpty)

        #expect(connection.answerUpstream("cursor=slow"))
        let raw = try connection.output()
        let responses = parseResponses(raw)

        #expect(responses.count == 1)
        #expect(raw.ranges(of: "HTTP/1.1 ").count == 1)
        #expect(responses.first?.status == "HTTP/1.1 200 OK")
        #expect(responses.first?.headers["connection"] == "close")
        #expect(responses.first?.body == FakeUpstream.page(for: "\(list)?cursor=slow"))
        #expect(!connection.channel.isActive)
        #expect(connection.upstream.requests.count == 1)
    }

    /// A quiesce that arrives while a request's body is still coming lets that request be answered, then
    /// closes.
    @Test func quiescingWhileABodyArrivesAnswersThatRequestThenCloses() throws {
        let connection = try QueueFixture()
        connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")

        connection.quiesce()
        #expect(connection.channel.isActive)
        connection.send("cd")

        let responses = parseResponses(try connection.output())
        #expect(responses.count == 1)
        #expect(responses.first?.status == "HTTP/1.1 200 OK")
        #expect(responses.first?.headers["connection"] == "close")
        #expect(!connection.channel.isActive)
    }

    /// A request held back because the client is not reading is answered, with `Connection: close`, once
    /// the client reads again; then the connection closes.
    @Test func quiescingWhileAnAnswerWaitsForTheClientToReadClosesAfterIt() throws {
        let connection = try QueueFixture()
        connection.channel.isWritable = false
        connection.channel.pipeline.fireChannelWritabilityChanged()
        connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")

        connection.quiesce()
        #expect(connection.channel.isActive)
        connection.channel.isWritable = true
        connection.channel.pipeline.fireChannelWritabilityChanged()
        connection.channel.embeddedEventLoop.run()

        let responses = parseResponses(try connection.output())
        #expect(responses.count == 1)
        #expect(responses.first?.body == #"{"status":"ok"}"#)
        #expect(responses.first?.headers["connection"] == "close")
        #expect(!connection.channel.isActive)
    }

    /// A connection writes each head into the buffer of the one before, once the socket has let go of it;
    /// while the earlier answer is still held (here, by the test, as by a socket that has not taken it),
    /// the next head goes elsewhere and the earlier bytes stay as they were.
    @Test func aHeadReusesTheBufferOfTheLastOnlyOnceNothingHoldsIt() throws {
        let connection = try QueueFixture()
        func answer(to path: String) throws -> ByteBuffer {
            connection.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
            let written = try connection.channel.readOutbound(as: ByteBuffer.self)
            #expect(try connection.channel.readOutbound(as: ByteBuffer.self) == nil)
            return try #require(written)
        }
        func address(_ buffer: ByteBuffer) -> Int {
            buffer.withUnsafeReadableBytes { Int(bitPattern: $0.baseAddress) }
        }

        var first: ByteBuffer? = try answer(to: "/healthz")
        let firstAddress = first.map(address)
        let capacity = first?.capacity ?? 0
        first = nil
        // Memory the first head gave back, if it did, is taken now: a head in new memory lands elsewhere.
        let blocker = ByteBufferAllocator().buffer(capacity: capacity)
        let second = try answer(to: "/readyz")
        let held = String(buffer: second)

        #expect(address(second) == firstAddress)
        #expect(address(blocker) != firstAddress)
        let third = try answer(to: "/healthz")
        #expect(address(third) != address(second))
        #expect(String(buffer: second) == held)
        #expect(held.hasPrefix("HTTP/1.1 ") && String(buffer: third).hasPrefix("HTTP/1.1 200 OK"))
    }

    @Test func pipelinedCacheHitsInOneReadAreAnsweredInOrderWithOneFlush() throws {
        let connection = try QueueFixture()
        let queries = ["page_size=1", "page_size=2", "page_size=3"]
        for query in queries {
            connection.send("GET \(list)?\(query) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(connection.answerUpstream(query))
        }
        #expect(parseResponses(try connection.output()).count == 3)
        let flushesBefore = connection.counter.flushes

        connection.send(
            queries.map { "GET \(list)?\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined()
        )
        let responses = parseResponses(try connection.output())

        #expect(responses.count == 3)
        #expect(responses.map(\.body) == queries.map { FakeUpstream.page(for: "\(list)?\($0)") })
        #expect(responses.allSatisfy { $0.headers["cache-status"]?.hasPrefix("xi-gateway; hit") == true })
        #expect(connection.counter.flushes - flushesBefore == 1)
        #expect(connection.upstream.requests.count == 3)
        #expect(connection.channel.isActive)
    }

    /// An answer written outside a read (the upstream answered) is flushed at once; the hits queued behind
    /// it follow in order, flushed together rather than one flush each.
    @Test func hitsQueuedBehindAnUpstreamAnswerFollowItFlushedTogether() throws {
        let connection = try QueueFixture()
        connection.send("GET \(list)?page_size=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(connection.answerUpstream("page_size=1"))
        _ = try connection.output()
        connection.send(
            "GET \(list)?page_size=9 HTTP/1.1\r\nHost: x\r\n\r\n"
                + String(repeating: "GET \(list)?page_size=1 HTTP/1.1\r\nHost: x\r\n\r\n", count: 2)
                + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        #expect(try connection.output().isEmpty)
        let flushesBefore = connection.counter.flushes

        #expect(connection.answerUpstream("page_size=9"))
        let responses = parseResponses(try connection.output())

        #expect(responses.count == 4)
        #expect(responses.first?.body == FakeUpstream.page(for: "\(list)?page_size=9"))
        #expect(responses.dropFirst().prefix(2).allSatisfy { $0.body == FakeUpstream.page(for: "\(list)?page_size=1") })
        #expect(responses.last?.body == #"{"status":"ok"}"#)
        #expect((1...2).contains(connection.counter.flushes - flushesBefore))
    }

    /// While an answer is prepared, the socket is still read (a client that leaves is noticed), until a
    /// request arrives behind it: from then on nothing more is read until the requests read are answered.
    @Test func nothingMoreIsReadWhileARequestWaitsForAnEarlierAnswer() throws {
        let connection = try QueueFixture()
        connection.send("GET \(list)?cursor=slow HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.channel.read()
        #expect(connection.counter.reads == 1)

        connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n")
        connection.channel.read()
        connection.channel.read()
        #expect(connection.counter.reads == 1)
        #expect(try connection.output().isEmpty)

        #expect(connection.answerUpstream("cursor=slow"))
        let responses = parseResponses(try connection.output())
        #expect(responses.map(\.status) == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"])
        // The read held back goes on now; the start of the third request waits for the rest of it.
        #expect(connection.counter.reads == 2)
        connection.send("Host: x\r\n\r\n")
        #expect(parseResponses(try connection.output()).map(\.status) == ["HTTP/1.1 200 OK"])
        #expect(connection.channel.isActive)
    }

    /// A request waiting for the upstream keeps what it needs of its head, not the bytes it was read from:
    /// a connection waiting on a slow upstream holds no read buffer (it could be 64 KiB).
    @Test(arguments: ["GET \(QueueFixture.list)?cursor=slow", "POST /v1/convai/agents/a-1/run-tests"])
    func aRequestWaitingForTheUpstreamDoesNotHoldTheBytesItWasReadFrom(requestLine: String) throws {
        let connection = try QueueFixture()
        var read = ByteBuffer(string: "\(requestLine) HTTP/1.1\r\nHost: x\r\nX-Request-Id: r-1\r\n\r\n")
        let address = read.withUnsafeReadableBytes { Int(bitPattern: $0.baseAddress) }
        try connection.channel.writeInbound(read)
        connection.channel.embeddedEventLoop.run()
        #expect(connection.upstream.openTargets.count == 1)

        // Writing to the buffer copies it first if anything else still holds it.
        read.setInteger(UInt8(ascii: "g"), at: read.readerIndex)
        #expect(read.withUnsafeReadableBytes { Int(bitPattern: $0.baseAddress) } == address)
        #expect(try connection.output().isEmpty)
    }

    /// A malformed request behind one whose answer is being prepared is refused after that answer is
    /// written, not instead of it; then the connection closes.
    @Test func aMalformedRequestBehindAPendingAnswerIsRefusedAfterIt() throws {
        let connection = try QueueFixture()
        connection.send(
            "GET \(list)?cursor=slow HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n"
        )
        #expect(try connection.output().isEmpty)
        #expect(connection.channel.isActive)

        #expect(connection.answerUpstream("cursor=slow"))
        let responses = parseResponses(try connection.output())

        #expect(responses.map(\.status) == ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"])
        #expect(responses.first?.body == FakeUpstream.page(for: "\(list)?cursor=slow"))
        #expect(responses.last?.headers["connection"] == "close")
        #expect(!connection.channel.isActive)
    }

    /// The head timer, armed by an earlier request, does not cut a later head short: the later head gets
    /// its whole `requestHeadTimeout` from its own first byte, and not more.
    @Test func theHeadTimeoutCountsFromTheFirstByteOfEachHead() throws {
        let connection = try QueueFixture(configuration: Self.tenSecondHeads)
        connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try connection.output().hasPrefix("HTTP/1.1 200 OK"))
        connection.wait(9)

        // From 9 s on, one byte every half second: the head never ends. Its 10 s run out at 19 s.
        var closedAt: Double?
        for (index, byte) in "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaa".enumerated() {
            connection.send(String(byte))
            connection.wait(0.5)
            let elapsed = 9 + Double(index + 1) * 0.5
            if closedAt == nil, !connection.channel.isActive { closedAt = elapsed }
        }

        let closed = try #require(closedAt)
        #expect(closed > 10.5, "still open at 10.5 s")
        #expect(closed <= 19.5, "closed by 19.5 s")
        #expect(closed >= 19, "not before the head's own 10 s")
        #expect(try !connection.output().contains("200 OK"))
    }

    /// A head that starts 9 s after the last answer and takes 9 s to arrive is answered: the timer armed
    /// for the first request neither fires for the second at 10 s nor lets it run past its own 10 s.
    @Test func aSlowHeadWithinItsOwnTimeoutIsAnsweredAfterAnEarlierRequest() throws {
        let connection = try QueueFixture(configuration: Self.tenSecondHeads)
        connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try connection.output()
        connection.wait(9)

        let head = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
        let pause = 9.0 / Double(head.count - 1)
        for (index, byte) in head.enumerated() {
            connection.send(String(byte))
            if index < head.count - 1 { connection.wait(pause) }
        }

        #expect(try connection.output().hasPrefix("HTTP/1.1 200 OK"))
        connection.wait(5)
        #expect(connection.channel.isActive)
    }

    /// A request whose head and body arrive in separate reads while an earlier answer waits on the upstream
    /// is answered after it, with its whole body forwarded.
    @Test func aRequestArrivingInPiecesBehindAPendingAnswerIsAnsweredAfterIt() throws {
        let connection = try QueueFixture()
        let body = #"{"tests":[{"test_id":"t-1"}],"note":"in pieces"}"#
        let bytes = Array(body.utf8)

        connection.send("GET \(list)?cursor=slow HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.send(
            "POST /v1/convai/agents/agent-7/run-tests HTTP/1.1\r\nHost: x\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(bytes.count)\r\n\r\n"
        )
        for range in [0..<5, 5..<20, 20..<bytes.count] {
            connection.send(String(decoding: bytes[range], as: UTF8.self))
        }
        #expect(try connection.output().isEmpty)
        #expect(connection.upstream.openTargets.count == 1)

        #expect(connection.answerUpstream("cursor=slow"))
        let first = parseResponses(try connection.output())
        #expect(first.count == 1)
        #expect(first.first?.body == FakeUpstream.page(for: "\(list)?cursor=slow"))

        let forwarded = try #require(connection.upstream.requests.last)
        #expect(connection.upstream.requests.count == 2)
        #expect(forwarded.method == .POST)
        #expect(forwarded.target == "/v1/convai/agents/agent-7/run-tests")
        #expect(forwarded.body.map { String(buffer: $0) } == body)

        let answered = connection.upstream.answer(
            .success(
                UpstreamResponse(
                    status: 201,
                    headers: HTTPHeaders([("Content-Type", "application/json")]),
                    body: ByteBuffer(string: #"{"started":true}"#)
                )
            ),
            targetContaining: "run-tests"
        )
        connection.channel.embeddedEventLoop.run()
        let second = parseResponses(try connection.output())

        #expect(answered)
        #expect(second.count == 1)
        #expect(second.first?.status == "HTTP/1.1 201 Created")
        #expect(second.first?.body == #"{"started":true}"#)
        #expect(connection.channel.isActive)
    }

    /// The same with a list request whose head is split across reads, the first part arriving in the read
    /// that brought the pending request, and whose body follows in two more.
    @Test func aListRequestSplitAcrossReadsBehindAPendingAnswerIsAnsweredAfterIt() throws {
        let connection = try QueueFixture()
        connection.send(
            "GET \(list)?cursor=slow HTTP/1.1\r\nHost: x\r\n\r\nGET \(list)?page_size=4 HTTP/1.1\r\nContent-Len"
        )
        connection.send("gth: 6\r\nHost: x\r\n\r\nabc")
        connection.send("def")
        #expect(try connection.output().isEmpty)

        #expect(connection.answerUpstream("cursor=slow"))
        #expect(connection.answerUpstream("page_size=4"))
        let responses = parseResponses(try connection.output())

        #expect(responses.count == 2)
        #expect(
            responses.map(\.body) == ["cursor=slow", "page_size=4"].map { FakeUpstream.page(for: "\(list)?\($0)") }
        )
        #expect(connection.upstream.requests.count == 2)
        #expect(connection.upstream.requests.last?.target == "\(list)?page_size=4")
        #expect(connection.channel.isActive)
    }
}
