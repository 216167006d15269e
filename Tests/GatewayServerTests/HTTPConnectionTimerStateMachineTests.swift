import NIOCore
import Testing

@testable import GatewayServer

/// The connection's one timer: events in, what to do with the one scheduled check out.
@Suite("HTTPConnection.TimerStateMachine")
struct HTTPConnectionTimerStateMachineTests {
    typealias Machine = HTTPConnection.TimerStateMachine

    /// An event, at a time in seconds.
    enum Event {
        case activity(Int64)
        case headBegan(Int64)
        case headCompleted
        case fired(Int64, answering: Bool)
        case close
    }

    /// Runs `steps` on `machine`, each event with the action it must return.
    private static func run(_ machine: inout Machine, _ steps: [(Event, Machine.Action)]) {
        for (index, (event, expected)) in steps.enumerated() {
            let action: Machine.Action
            switch event {
            case .activity(let second): action = machine.activity(at: at(second))
            case .headBegan(let second): action = machine.headBegan(at: at(second))
            case .headCompleted:
                machine.headCompleted()
                action = .none
            case .fired(let second, let answering): action = machine.fired(at: at(second), isAnswering: answering)
            case .close: action = machine.close()
            }
            #expect(action == expected, "step \(index): \(event)")
        }
    }

    private static func at(_ second: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(second) * 1_000_000_000) }

    private static func arm(_ second: Int64) -> Machine.Action { .arm(at(second)) }

    private static func connection() -> Machine { Machine(idleTimeout: .seconds(60), headTimeout: .seconds(10)) }

    @Test func anIdleConnectionClosesAtTheIdleTimeout() {
        var machine = Self.connection()
        Self.run(&machine, [(.activity(0), Self.arm(60)), (.fired(60, answering: false), .close)])
        Self.run(&machine, [(.fired(61, answering: false), .none), (.close, .none)])
    }

    /// Requests only move the stamp; the check, firing early, is armed again for what is left.
    @Test func requestsMoveTheDeadlineWithoutReschedulingEachTime() {
        var machine = Self.connection()
        Self.run(
            &machine,
            [
                (.activity(0), Self.arm(60)),
                (.activity(20), .none),
                (.activity(30), .none),
                (.fired(60, answering: false), Self.arm(90)),
                (.fired(90, answering: false), .close),
            ]
        )
    }

    /// While an answer is prepared, the idle check does not close: it looks again a whole timeout later.
    @Test func theIdleCheckWaitsWhileAnAnswerIsPrepared() {
        var machine = Self.connection()
        Self.run(
            &machine,
            [
                (.activity(0), Self.arm(60)),
                (.fired(60, answering: true), Self.arm(120)),
                (.activity(100), .none),
                (.fired(120, answering: false), Self.arm(160)),
                (.fired(160, answering: false), .close),
            ]
        )
    }

    /// A head left incomplete moves the check earlier, to its own deadline; later reads inside the same
    /// head do not move it again.
    @Test func aSlowHeadClosesAtTheHeadTimeoutFromItsFirstByte() {
        var machine = Self.connection()
        Self.run(
            &machine,
            [
                (.activity(0), Self.arm(60)),
                (.headBegan(5), Self.arm(15)),
                (.headBegan(7), .none),
                (.fired(15, answering: false), .close),
            ]
        )
    }

    /// A head completed in time leaves only the idle deadline, counted from the request it began.
    @Test func aHeadCompletedInTimeLeavesTheIdleDeadline() {
        var machine = Self.connection()
        Self.run(
            &machine,
            [
                (.activity(0), Self.arm(60)),
                (.headBegan(5), Self.arm(15)),
                (.headCompleted, .none),
                (.activity(12), .none),
                (.fired(15, answering: false), Self.arm(72)),
                (.activity(50), .none),
                (.fired(72, answering: false), Self.arm(110)),
                // The next head is timed from its own first byte.
                (.headBegan(95), Self.arm(105)),
                (.fired(105, answering: false), .close),
            ]
        )
    }

    /// A head that begins when the check is due sooner anyway does not move it.
    @Test func aHeadDueAfterTheCheckDoesNotMoveIt() {
        var machine = Self.connection()
        Self.run(
            &machine,
            [
                (.activity(0), Self.arm(60)),
                (.headBegan(55), .none),
                // Idle since 0: a head still arriving does not count as activity.
                (.fired(60, answering: false), .close),
            ]
        )
    }

    /// A reader on its own (``RequestDecoder``) times heads only.
    @Test func withoutAnIdleTimeoutOnlyHeadsAreTimed() {
        var machine = Machine(idleTimeout: nil, headTimeout: .seconds(10))
        Self.run(
            &machine,
            [
                (.activity(0), .none),
                (.headBegan(3), Self.arm(13)),
                (.headCompleted, .none),
                (.fired(13, answering: false), .none),
                (.headBegan(20), Self.arm(30)),
                (.fired(30, answering: false), .close),
            ]
        )
    }

    @Test func closingCancelsTheCheckAndIgnoresLaterEvents() {
        var machine = Self.connection()
        Self.run(
            &machine,
            [
                (.activity(0), Self.arm(60)),
                (.close, .cancel),
                (.activity(1), .none),
                (.headBegan(2), .none),
                (.fired(60, answering: false), .none),
                (.close, .none),
            ]
        )
    }
}
