import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayServer

/// An event of ``HTTPConnection/StateMachine``, as the handler reports it.
enum ConnectionEvent {
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

/// What ``HTTPConnection/StateMachine`` returned, in terms a table can compare.
enum ConnectionOutcome: Equatable {
    case none
    case yes
    case no
    case read(flush: Bool)
    case flush
    case respond(String, body: Int?)
    case refuse(UInt, RefusalReason, method: HTTPMethod?)
    case write(HTTPConnection.StateMachine.Write)
    case waitForWritable
    case sendContinue(flush: Bool)
    case close(flush: Bool)
    case closeOutput(linger: TimeAmount)
}

/// Tests of ``HTTPConnection/StateMachine`` as tables: each event with the outcome it must have.
protocol ConnectionTable {}

extension ConnectionTable {
    typealias Machine = HTTPConnection.StateMachine
    typealias Event = ConnectionEvent
    typealias Did = ConnectionOutcome

    static var runTests: String { "/v1/convai/agents/a-1/run-tests" }

    static func did(_ action: Machine.Action) -> Did {
        switch action {
        case .none: return .none
        case .read(let flush): return .read(flush: flush)
        case .flush: return .flush
        case .respond(let head, _, let body): return .respond(head.uri, body: body?.readableBytes)
        case .refuse(let error, let reason, let method):
            return .refuse(error.response().status.code, reason, method: method)
        case .waitForWritable: return .waitForWritable
        case .sendContinue(let flush): return .sendContinue(flush: flush)
        case .close(let flush): return .close(flush: flush)
        case .closeOutput(let linger): return .closeOutput(linger: linger)
        }
    }

    /// Runs `steps` on `machine`, each event with what it must return.
    static func run(_ machine: inout Machine, _ steps: [(Event, Did)]) {
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

    static func route(_ head: RequestHead) -> Route { Route(method: head.method, uri: head.uri) }

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
        .write(Machine.Write(version: version, isHead: isHead, keepAlive: keepAlive, flush: flush))
    }

    /// One read bringing `events`, as the handler reports it; the answers are flushed once, at read-complete.
    static func inOneRead(_ events: [(Event, Did)], unread: Bool = false, flush: Bool = true) -> [(Event, Did)] {
        [(.readStarted, .yes), (.startTaking, .yes)] + events + [
            (.stopTaking(unread: unread), .none), (.readEnded, .none), (.readComplete, flush ? .flush : .none),
        ]
    }

    static func machine(maxBodyBytes: Int = 8) -> Machine { Machine(maxBodyBytes: maxBodyBytes) }
}
