import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayServer

/// The connection's decisions without a channel: tables of events and the actions each must return.
@Suite("HTTPConnection.StateMachine")
struct HTTPConnectionStateMachineTests {
    typealias Machine = HTTPConnection.StateMachine
    typealias Write = Machine.Write

    static let runTests = "/v1/convai/agents/a-1/run-tests"

    /// An event, as the handler reports it.
    enum Event {
        case readRequested(unread: Bool = false)
        case readStarted
        case readEnded
        case readComplete
        case startTaking
        case stopTaking(unread: Bool = false)
        case request(RequestHead)
        case head(RequestHead, teamUnknown: Bool = false)
        case body(Int)
        case end
        case parseFailed(HTTPParserError, RefusalReason?)
        case answer(isHead: Bool = false, closes: Bool = false, unread: Bool = false)
        case lastAnswerWritten
        case writable(Bool)
        case inputClosed
        case quiesce
    }

    /// An action, in terms a table can compare.
    enum Did: Equatable {
        case none
        case yes
        case no
        case read(flush: Bool)
        case flush
        case respond(String, body: Int?)
        case refuse(UInt, RefusalReason, method: HTTPMethod?)
        case write(Write)
        case sendContinue(flush: Bool)
        case close(flush: Bool)
        case closeOutput(linger: TimeAmount)
    }

    private static func did(_ action: Machine.Action) -> Did {
        switch action {
        case .none: return .none
        case .read(let flush): return .read(flush: flush)
        case .flush: return .flush
        case .respond(let head, _, let body): return .respond(head.uri, body: body?.readableBytes)
        case .refuse(let error, let reason, let method):
            return .refuse(error.response().status.code, reason, method: method)
        case .sendContinue(let flush): return .sendContinue(flush: flush)
        case .close(let flush): return .close(flush: flush)
        case .closeOutput(let linger): return .closeOutput(linger: linger)
        }
    }

    /// Runs `steps` on `machine`, each event with what it must return.
    private static func run(_ machine: inout Machine, _ steps: [(Event, Did)]) {
        for (index, (event, expected)) in steps.enumerated() {
            let result: Did
            switch event {
            case .readRequested(let unread): result = did(machine.readRequested(hasUnreadBytes: unread))
            case .readStarted: result = machine.readStarted() ? .yes : .no
            case .readEnded:
                machine.readEnded()
                result = .none
            case .readComplete: result = did(machine.readComplete())
            case .startTaking: result = machine.startTakingRequests() ? .yes : .no
            case .stopTaking(let unread): result = did(machine.stopTakingRequests(hasUnreadBytes: unread))
            case .request(let head): result = did(machine.requestReceived(head, route: route(head)))
            case .head(let head, let unknown):
                result = did(machine.headReceived(head, route: route(head), isTeamUnknown: unknown))
            case .body(let count): result = did(machine.bodyReceived(ByteBuffer(repeating: 0x61, count: count)))
            case .end: result = did(machine.endReceived())
            case .parseFailed(let error, let reason): result = did(machine.parseFailed(error, reason: reason))
            case .answer(let isHead, let closes, let unread):
                let write = machine.answerReady(isHead: isHead, closesConnection: closes, hasUnreadBytes: unread)
                result = write.map { .write($0) } ?? .none
            case .lastAnswerWritten: result = did(machine.lastAnswerWritten())
            case .writable(let writable): result = did(machine.writabilityChanged(isWritable: writable))
            case .inputClosed: result = did(machine.inputClosed())
            case .quiesce: result = did(machine.quiesce())
            }
            #expect(result == expected, "step \(index): \(event)")
        }
    }

    private static func route(_ head: RequestHead) -> Route { Route(method: head.method, uri: head.uri) }

    /// A head as the reader makes it.
    static func head(
        _ method: HTTPMethod = .GET,
        _ uri: String = "/healthz",
        version: HTTPVersion = .http1_1,
        keepAlive: Bool? = nil,
        host: Bool = true,
        length: Int? = nil,
        expectation: RequestHead.Expectation = .none
    ) -> RequestHead {
        var head = RequestHead(
            method: method,
            uri: uri,
            version: version,
            isKeepAlive: keepAlive ?? (version == .http1_1),
            fieldLines: ByteBuffer(string: host ? "Host: x\r\n" : "")
        )
        head.hasHost = host
        head.contentLength = length
        head.expectation = expectation
        return head
    }

    static func write(
        _ version: HTTPVersion = .http1_1,
        isHead: Bool = false,
        keepAlive: Bool = true,
        flush: Bool
    ) -> Did {
        .write(Write(version: version, isHead: isHead, keepAlive: keepAlive, flush: flush))
    }

    /// One read bringing `events`, as the handler reports it; the answers are flushed once, at read-complete.
    static func inOneRead(_ events: [(Event, Did)], unread: Bool = false, flush: Bool = true) -> [(Event, Did)] {
        [(.readStarted, .yes), (.startTaking, .yes)] + events + [
            (.stopTaking(unread: unread), .none), (.readEnded, .none), (.readComplete, flush ? .flush : .none),
        ]
    }

    private static func machine(maxBodyBytes: Int = 8) -> Machine { Machine(maxBodyBytes: maxBodyBytes) }

    // MARK: - Keep-alive

    @Test func aKeepAliveRequestIsAnsweredAndFlushedAtReadComplete() {
        var machine = Self.machine()
        Self.run(&machine, [(.readRequested(), .read(flush: false))])
        Self.run(
            &machine,
            Self.inOneRead([
                (.request(Self.head()), .respond("/healthz", body: nil)),
                (.answer(isHead: true), Self.write(isHead: true, flush: false)),
            ])
        )
        Self.run(&machine, [(.readComplete, .none), (.readRequested(), .read(flush: false))])
        #expect(machine.takesRequests)
    }

    /// HTTP/1.1 stays open unless the client says `close`; HTTP/1.0 only when it says `keep-alive`.
    @Test(arguments: [
        (Self.head(), true),
        (Self.head(version: .http1_0, host: false), false),
        (Self.head(version: .http1_0, keepAlive: true, host: false), true),
        (Self.head(version: .http1_0, keepAlive: false, host: false), false),
        (Self.head(version: .http1_1, keepAlive: false), false),
    ])
    func theConnectionStaysOpenWhenTheHeadSaysSo(head: RequestHead, stays: Bool) {
        var machine = Self.machine()
        Self.run(&machine, [(.request(head), .respond("/healthz", body: nil))])
        // An answer outside a read is flushed at once.
        Self.run(&machine, [(.answer(), Self.write(head.version, keepAlive: stays, flush: true))])
        #expect(machine.isClosed == !stays)
    }

    // MARK: - Pipelining and back-pressure

    /// One request at a time: the next waits unread, reads are held meanwhile, and the held read goes on
    /// once the requests read are answered.
    @Test func pipelinedRequestsAreAnsweredInOrderOneAtATime() {
        var machine = Self.machine()
        Self.run(
            &machine,
            Self.inOneRead(
                [(.request(Self.head(.GET, "/a")), .respond("/a", body: nil))],
                unread: true,
                flush: false
            )
        )
        #expect(!machine.takesRequests)
        Self.run(
            &machine,
            [
                (.readRequested(unread: true), .none),
                // The first answer arrives later (the upstream): written and flushed at once.
                (.answer(), Self.write(flush: true)),
                (.startTaking, .yes),
                (.request(Self.head(.GET, "/b")), .respond("/b", body: nil)),
                (.answer(), Self.write(flush: false)),
                (.stopTaking(unread: false), .read(flush: true)),
            ]
        )
    }

    /// While an answer is prepared the socket is still read, until a request waits behind it.
    @Test func readsAreHeldOnlyOnceARequestWaits() {
        var machine = Self.machine()
        Self.run(
            &machine,
            [
                (.request(Self.head()), .respond("/healthz", body: nil)),
                (.readRequested(unread: false), .read(flush: false)),
                (.readRequested(unread: true), .none),
            ]
        )
    }

    /// Not writable: nothing is read, a whole request waits, and is answered when the socket takes more.
    @Test func aRequestWaitsWhileTheSocketIsNotWritable() {
        var machine = Self.machine()
        Self.run(
            &machine,
            [
                (.writable(false), .none),
                (.readRequested(), .none),
                (.startTaking, .yes),
                (.request(Self.head()), .none),
                (.stopTaking(unread: true), .none),
                (.writable(true), .respond("/healthz", body: nil)),
                (.answer(), Self.write(flush: true)),
                (.startTaking, .yes),
                (.stopTaking(unread: false), .read(flush: false)),
            ]
        )
    }

    // MARK: - Bodies

    @Test func aForwardedWritesBodyIsKept() {
        var machine = Self.machine()
        Self.run(
            &machine,
            [
                (.head(Self.head(.POST, Self.runTests, length: 20)), .none),
                (.body(12), .none),
                (.body(8), .none),
                (.end, .respond(Self.runTests, body: 20)),
            ]
        )
    }

    /// Other bodies are counted up to the limit; past it, `413` and a lingering close.
    @Test func aBodyOverTheLimitIsRefusedAndTheConnectionLingers() {
        var machine = Self.machine(maxBodyBytes: 8)
        Self.run(
            &machine,
            [
                (.head(Self.head(.GET, "/healthz")), .none),
                (.body(5), .none),
                (.body(4), .refuse(413, .bodyTooLarge, method: .GET)),
                (.answer(), Self.write(keepAlive: false, flush: true)),
                (.lastAnswerWritten, .closeOutput(linger: .seconds(2))),
                (.body(1), .none),
            ]
        )
        #expect(machine.isClosed)
    }

    @Test(arguments: [
        (Self.head(.GET, "/healthz", length: 9), true),
        (Self.head(.GET, "/healthz", length: 8), false),
        (Self.head(.POST, Self.runTests, length: Machine.maxForwardedBodyBytes + 1), true),
        (Self.head(.POST, Self.runTests, length: Machine.maxForwardedBodyBytes), false),
    ])
    func aDeclaredBodyOverTheLimitIsRefusedBeforeTheBody(head: RequestHead, refused: Bool) {
        var machine = Self.machine(maxBodyBytes: 8)
        Self.run(&machine, [(.head(head), refused ? .refuse(413, .bodyTooLarge, method: head.method) : .none)])
    }

    // MARK: - Refusals before the body

    @Test(arguments: [false, true])
    func anHTTP11RequestWithoutHostIsRefused(hasBody: Bool) {
        var machine = Self.machine()
        let head = Self.head(host: false)
        Self.run(
            &machine,
            [
                (hasBody ? .head(head) : .request(head), .refuse(400, .missingHost, method: .GET)),
                (.answer(), Self.write(keepAlive: false, flush: true)),
                (.lastAnswerWritten, .closeOutput(linger: .seconds(2))),
            ]
        )
    }

    @Test(arguments: [(HTTPVersion.http1_1, Did.sendContinue(flush: true)), (.http1_0, .none)])
    func anHTTP11ExpectationOf100ContinueIsMet(version: HTTPVersion, expected: Did) {
        var machine = Self.machine()
        let head = Self.head(.POST, Self.runTests, version: version, length: 2, expectation: .continue)
        Self.run(&machine, [(.head(head), expected), (.body(2), .none), (.end, .respond(Self.runTests, body: 2))])
    }

    /// Within a read, `100 Continue` leaves with whatever the read brought about, at read-complete.
    @Test func aContinueWithinAReadIsFlushedAtReadComplete() {
        var machine = Self.machine()
        let head = Self.head(.POST, Self.runTests, length: 2, expectation: .continue)
        Self.run(&machine, Self.inOneRead([(.head(head), .sendContinue(flush: false))]))
    }

    @Test func anUnsupportedExpectationIs417() {
        var machine = Self.machine()
        Self.run(
            &machine,
            [
                (
                    .head(Self.head(.POST, Self.runTests, length: 2, expectation: .unsupported)),
                    .refuse(417, .expectationFailed, method: .POST)
                ),
                (.answer(), Self.write(keepAlive: false, flush: true)),
                (.lastAnswerWritten, .closeOutput(linger: .seconds(2))),
            ]
        )
    }

    /// An unknown team's request is answered before its body is read (the responder says `401`), and the
    /// connection closes after lingering.
    @Test func anUnknownTeamIsAnsweredBeforeTheBodyAndCloses() {
        var machine = Self.machine()
        Self.run(
            &machine,
            [
                (
                    .head(Self.head(.POST, Self.runTests, length: 2), teamUnknown: true),
                    .respond(Self.runTests, body: nil)
                ),
                (.body(2), .none),
                (.answer(), Self.write(keepAlive: false, flush: true)),
                (.lastAnswerWritten, .closeOutput(linger: .seconds(2))),
            ]
        )
        #expect(machine.isClosed)
    }

    // MARK: - Quiescing, half-close, errors

    @Test func quiescingAnIdleConnectionClosesItNow() {
        var machine = Self.machine()
        Self.run(&machine, [(.quiesce, .close(flush: false)), (.readStarted, .no)])
    }

    @Test func quiescingWhileAnsweringClosesAfterTheAnswer() {
        var machine = Self.machine()
        Self.run(
            &machine,
            [
                (.request(Self.head()), .respond("/healthz", body: nil)),
                (.quiesce, .none),
                (.answer(unread: true), Self.write(keepAlive: false, flush: true)),
                (.lastAnswerWritten, .close(flush: false)),
            ]
        )
        #expect(machine.isClosed)
    }

    /// After a half-close, what was sent whole is answered; then the connection closes.
    @Test func aHalfClosedConnectionAnswersWhatWasWholeThenCloses() {
        var machine = Self.machine()
        Self.run(
            &machine,
            [
                (.request(Self.head(.GET, "/a")), .respond("/a", body: nil)),
                (.inputClosed, .none),
                // A second request waits read: this answer keeps the connection open for it.
                (.answer(unread: true), Self.write(flush: true)),
                (.startTaking, .yes),
                (.request(Self.head(.GET, "/b")), .respond("/b", body: nil)),
                (.answer(unread: false), Self.write(keepAlive: false, flush: true)),
            ]
        )
        #expect(machine.isClosed)
    }

    /// What is left is the start of a request that will never be finished: the connection closes.
    @Test func aHalfCloseBetweenRequestsCloses() {
        var machine = Self.machine()
        Self.run(
            &machine,
            Self.inOneRead(
                [
                    (.request(Self.head()), .respond("/healthz", body: nil)),
                    (.answer(unread: true), Self.write(flush: false)),
                ],
                unread: true
            )
        )
        Self.run(&machine, [(.inputClosed, .close(flush: false))])
    }

    @Test(
        arguments: [
            (.headerOverflow, .headTooLarge, 431),
            (.invalidMethod, nil, 400),
            (.lfExpected, .bareLF, 400),
        ] as [(HTTPParserError, RefusalReason?, UInt)]
    )
    func anUnreadableRequestIsRefusedAndCloses(error: HTTPParserError, reason: RefusalReason?, status: UInt) {
        var machine = Self.machine()
        Self.run(
            &machine,
            Self.inOneRead(
                [
                    (.parseFailed(error, reason), .refuse(status, reason ?? .invalidRequestLine, method: nil)),
                    (.answer(), Self.write(keepAlive: false, flush: true)),
                    (.lastAnswerWritten, .close(flush: false)),
                ],
                flush: false
            )
        )
        #expect(machine.isClosed)
    }
}
