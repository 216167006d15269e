import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayServer

/// The connection's decisions without a channel: keep-alive, pipelining, back-pressure and bodies, as tables
/// of events and the outcome each must have.
@Suite("HTTPConnection.StateMachine")
struct HTTPConnectionStateMachineTests: ConnectionTable {
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
                (.request(Self.head()), .waitForWritable),
                (.stopTaking(unread: true), .none),
                (.writable(true), .respond("/healthz", body: nil)),
                (.answer(), Self.write(flush: true)),
                (.startTaking, .yes),
                (.stopTaking(unread: false), .read(flush: false)),
            ]
        )
    }

    /// A request with a body is read whole first; then it waits, and the idle clock starts again.
    @Test func aRequestWithABodyWaitsForTheSocketAtItsEnd() {
        var machine = Self.machine()
        Self.run(
            &machine,
            [
                (.writable(false), .none),
                (.head(Self.head(.POST, Self.runTests, length: 2)), .none),
                (.body(2), .none),
                (.end, .waitForWritable),
                (.writable(true), .respond(Self.runTests, body: 2)),
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
}
