import NIOCore
import Testing

@testable import GatewayShared

/// The connection's decisions without NIO: tokens are numbers, time is given.
@Suite("RedisConnectionHandler.StateMachine: handshake first, replies in order, one timer, closing")
struct RedisConnectionStateMachineTests {
    typealias Machine = RedisConnectionHandler.StateMachine<Int>

    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    static let timeout = TimeAmount.milliseconds(100)

    static func command(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static func machine(handshake: [String] = [], pushes: Bool = false, secret: String? = nil) -> Machine {
        Machine(
            handshake: handshake.map { (name: $0, command: command($0)) },
            timeout: timeout,
            pushes: pushes,
            secret: secret
        )
    }

    static func written(_ action: Machine.Action) -> [String] {
        guard case .write(let buffers) = action else { return [] }
        return buffers.map { String(buffer: $0) }
    }

    @Test func commandsWaitForTheHandshakeThenGoOutInOrder() {
        var machine = Self.machine(handshake: ["AUTH", "SELECT"])
        guard case .none = machine.send(Self.command("GET a"), token: 1, now: Self.start) else {
            Issue.record("wrote before connecting")
            return
        }
        _ = machine.send(Self.command("GET b"), token: 2, now: Self.start)
        #expect(Self.written(machine.connected(now: Self.start)) == ["AUTH", "SELECT"])
        guard case .none = machine.received(.simpleString("OK")) else {
            Issue.record("wrote before the whole handshake was answered")
            return
        }
        #expect(Self.written(machine.received(.simpleString("OK"))) == ["GET a", "GET b"])
        #expect(machine.pendingCount == 2)
        guard case .succeed(1, .bulkString(let first)) = machine.received(.bulkString(Self.command("A"))) else {
            Issue.record("first reply not matched to the first command")
            return
        }
        #expect(String(buffer: first) == "A")
        guard case .fail(2, let error) = machine.received(.error("WRONGTYPE no")) else {
            Issue.record("error reply not a failure")
            return
        }
        #expect(error.serverMessage == "WRONGTYPE no")
        #expect(Self.written(machine.send(Self.command("PING"), token: 3, now: Self.start)) == ["PING"])
    }

    @Test func withoutHandshakeCommandsGoOutOnConnecting() {
        var machine = Self.machine()
        _ = machine.send(Self.command("PING"), token: 1, now: Self.start)
        #expect(Self.written(machine.connected(now: Self.start)) == ["PING"])
    }

    @Test func aRefusedHandshakeFailsEveryCommandWithoutTheSecret() {
        var machine = Self.machine(handshake: ["AUTH"], secret: "hunter2")
        _ = machine.send(Self.command("GET a"), token: 1, now: Self.start)
        _ = machine.connected(now: Self.start)
        guard case .close(let error, let failing) = machine.received(.error("WRONGPASS bad hunter2")) else {
            Issue.record("a refused AUTH did not close")
            return
        }
        #expect(error.isConnectionFailure)
        #expect(!"\(error)".contains("hunter2"))
        #expect(failing.map { $0.0 } == [1])
        #expect(machine.isClosed)
        guard case .fail(2, _) = machine.send(Self.command("PING"), token: 2, now: Self.start) else {
            Issue.record("a closed connection took a command")
            return
        }
    }

    @Test func aReplyToNoCommandIsAProtocolError() {
        var machine = Self.machine()
        _ = machine.connected(now: Self.start)
        guard case .close(let error, _) = machine.received(.simpleString("OK")) else {
            Issue.record("an unexpected reply was accepted")
            return
        }
        #expect(error.shortDescription == "protocol_error")
    }

    @Test func onlyTheTimedOutCommandsFailWithTimeout() {
        var machine = Self.machine()
        _ = machine.connected(now: Self.start)
        _ = machine.send(Self.command("GET a"), token: 1, now: Self.start)
        #expect(machine.timer() == .arm(Self.start + Self.timeout))
        let later = Self.start + .milliseconds(50)
        _ = machine.send(Self.command("GET b"), token: 2, now: later)
        #expect(machine.timer() == .none, "one timer for many commands")
        guard case .none = machine.timerFired(now: Self.start + .milliseconds(99)) else {
            Issue.record("fired early and closed")
            return
        }
        #expect(machine.timer() == .arm(Self.start + Self.timeout))
        guard case .close(let error, let failing) = machine.timerFired(now: Self.start + Self.timeout) else {
            Issue.record("a command past its deadline did not close the connection")
            return
        }
        #expect(error == .timeout)
        #expect(failing.map { $0.0 } == [1, 2])
        #expect(failing[0].1 == .timeout)
        #expect(failing[1].1.isConnectionFailure)
        #expect(machine.timer() == .none, "the check that closed is no longer scheduled")
    }

    @Test func answeredCommandsMoveTheTimerLaterWithoutRescheduling() {
        var machine = Self.machine()
        _ = machine.connected(now: Self.start)
        _ = machine.send(Self.command("GET a"), token: 1, now: Self.start)
        #expect(machine.timer() == .arm(Self.start + Self.timeout))
        _ = machine.send(Self.command("GET b"), token: 2, now: Self.start + .milliseconds(80))
        _ = machine.received(.null)
        #expect(machine.timer() == .none)
        guard case .none = machine.timerFired(now: Self.start + Self.timeout) else {
            Issue.record("closed though the late command still had time")
            return
        }
        #expect(machine.timer() == .arm(Self.start + .milliseconds(180)))
        _ = machine.received(.null)
        guard case .none = machine.timerFired(now: Self.start + .milliseconds(180)) else {
            Issue.record("closed with nothing pending")
            return
        }
        #expect(machine.timer() == .none)
    }

    @Test func commandsWaitingForTheConnectionAreTimedToo() {
        var machine = Self.machine()
        _ = machine.send(Self.command("GET a"), token: 1, now: Self.start)
        #expect(machine.timer() == .arm(Self.start + Self.timeout))
        guard case .close(_, let failing) = machine.timerFired(now: Self.start + Self.timeout) else {
            Issue.record("a connection that never came did not time out")
            return
        }
        #expect(failing.map { $0.0 } == [1])
        #expect(failing[0].1 == .timeout)
    }

    @Test func losingTheConnectionFailsEverythingOnce() {
        var machine = Self.machine(handshake: ["AUTH"])
        _ = machine.connected(now: Self.start)
        _ = machine.send(Self.command("GET a"), token: 1, now: Self.start)
        guard case .close(let error, let failing) = machine.closed(.connectionFailed("reset")) else {
            Issue.record("a lost connection did not close")
            return
        }
        #expect(error == .connectionFailed("reset"))
        #expect(failing.map { $0.0 } == [1])
        #expect(machine.closeReason == .connectionFailed("reset"))
        guard case .none = machine.closed(.closed) else {
            Issue.record("closed twice")
            return
        }
        guard case .none = machine.received(.null) else {
            Issue.record("a reply after closing was used")
            return
        }
    }

    @Test func messagesArePushesOnlyInPushMode() {
        let message = RESPValue.array([
            .bulkString(ByteBuffer(string: "message")), .bulkString(ByteBuffer(string: "news")),
            .bulkString(ByteBuffer(string: "hello")),
        ])
        var subscriber = Self.machine(pushes: true)
        _ = subscriber.connected(now: Self.start)
        _ = subscriber.send(Self.command("SUBSCRIBE news"), token: 1, now: Self.start)
        let confirmation = RESPValue.array([
            .bulkString(ByteBuffer(string: "subscribe")), .bulkString(ByteBuffer(string: "news")), .integer(1),
        ])
        guard case .succeed(1, confirmation) = subscriber.received(confirmation) else {
            Issue.record("the confirmation did not answer SUBSCRIBE")
            return
        }
        guard case .push(message) = subscriber.received(message) else {
            Issue.record("a message was not a push")
            return
        }
        var plain = Self.machine()
        _ = plain.connected(now: Self.start)
        _ = plain.send(Self.command("LRANGE l 0 -1"), token: 1, now: Self.start)
        guard case .succeed(1, message) = plain.received(message) else {
            Issue.record("an ordinary array reply was taken for a push")
            return
        }
    }
}
