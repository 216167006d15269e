import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayServer

/// The connection's decisions without a channel: what is refused before a body, quiescing, half-closes and
/// unreadable requests.
@Suite("HTTPConnection.StateMachine: refusals and closing")
struct HTTPConnectionStateMachineClosingTests: ConnectionTable {
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
