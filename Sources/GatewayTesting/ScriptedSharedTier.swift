import GatewayCore
import NIOCore
import NIOPosix

/// An in-memory ``SharedTier`` that answers from a script and records every call, for testing what the
/// request path does with each answer of a shared tier without Redis.
public final class ScriptedSharedTier: SharedTier {
    /// What the next calls answer; the first entry of each list is used once, then the `then` value.
    public struct Script: Sendable {
        public var entries: [SharedEntry]
        public var thenEntry: SharedEntry
        public var outcomes: [SharedOutcome?]
        public var budget: BudgetDecision?
        /// What the shared bucket holds after each spend the script answers.
        public var budgetTokensLeft: Double = 0
        public var isUp: Bool

        public init(
            entries: [SharedEntry] = [],
            thenEntry: SharedEntry = .alone,
            outcomes: [SharedOutcome?] = [],
            budget: BudgetDecision? = .allowed,
            isUp: Bool = true
        ) {
            self.entries = entries
            self.thenEntry = thenEntry
            self.outcomes = outcomes
            self.budget = budget
            self.isUp = isUp
        }
    }

    /// One call the request path made.
    public enum Call: Sendable, Hashable {
        case enter(query: String, freshMilliseconds: Int)
        case outcome(query: String)
        /// `body` as text (unpacked when it was gzip, which `gzip` says).
        case finish(query: String, status: Int, body: String, gzip: Bool = false, lifeMilliseconds: Int)
        case abandon(query: String)
        case spend(team: String, perMinute: Int)
        case invalidate(agent: String?)
    }

    private let state: Locked<(script: Script, calls: [Call])>

    public init(_ script: Script = Script()) {
        self.state = Locked((script, []))
    }

    /// Every call, in order.
    public var calls: [Call] { state.withLock { $0.calls } }

    /// Changes the script for the calls to come.
    public func update(_ change: (inout Script) -> Void) { state.withLock { change(&$0.script) } }

    public var isUp: Bool { state.withLock { $0.script.isUp } }

    public func enter(
        _ key: CacheKey,
        freshMilliseconds: Int,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<SharedEntry> {
        let entry = state.withLock { state -> SharedEntry in
            state.calls.append(.enter(query: key.query, freshMilliseconds: freshMilliseconds))
            guard !state.script.entries.isEmpty else { return state.script.thenEntry }
            return state.script.entries.removeFirst()
        }
        return eventLoop.makeSucceededFuture(entry)
    }

    public func outcome(
        of key: CacheKey,
        within limit: TimeAmount,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<SharedOutcome?> {
        let outcome = state.withLock { state -> SharedOutcome? in
            state.calls.append(.outcome(query: key.query))
            guard !state.script.outcomes.isEmpty else { return nil }
            return state.script.outcomes.removeFirst()
        }
        return eventLoop.makeSucceededFuture(outcome)
    }

    public func finish(
        _ flight: SharedFlight,
        status: Int,
        body: ByteBuffer,
        contentType: String,
        lifeMilliseconds: Int,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Void> {
        let unpacked = body.withUnsafeReadableBytes { try? Gzip.decompress($0, limit: 1 << 26) }
        let call = Call.finish(
            query: flight.key.query,
            status: status,
            body: unpacked.map { String(decoding: $0, as: UTF8.self) } ?? String(buffer: body),
            gzip: unpacked != nil,
            lifeMilliseconds: lifeMilliseconds
        )
        state.withLock { $0.calls.append(call) }
        return eventLoop.makeSucceededVoidFuture()
    }

    public func abandon(_ flight: SharedFlight, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        state.withLock { $0.calls.append(.abandon(query: flight.key.query)) }
        return eventLoop.makeSucceededVoidFuture()
    }

    public func spend(team: String, perMinute: Int, on eventLoop: any EventLoop) -> EventLoopFuture<SharedBudget?> {
        let answer = state.withLock { state -> SharedBudget? in
            state.calls.append(.spend(team: team, perMinute: perMinute))
            return state.script.budget.map { SharedBudget(decision: $0, tokensLeft: state.script.budgetTokensLeft) }
        }
        return eventLoop.makeSucceededFuture(answer)
    }

    public func invalidate(agent: String?) -> EventLoopFuture<Void> {
        state.withLock { $0.calls.append(.invalidate(agent: agent)) }
        return MultiThreadedEventLoopGroup.singleton.any().makeSucceededVoidFuture()
    }
}
