import NIOCore

extension RedisConnectionHandler {
    /// What one Redis connection does next, without NIO: commands in, replies matched to them in order,
    /// the handshake (`AUTH`, `SELECT`) before any command, and the one timer that bounds every command.
    ///
    /// Commands given before the connection is ready wait, unwritten, until the handshake has been answered
    /// (a command must never run before `SELECT` picked its database). Once ready, each command is written at
    /// once: many are in flight together, and the n-th reply answers the n-th command. A command unanswered
    /// `timeout` after it was given closes the connection: it fails with ``RedisError/timeout`` and every
    /// other command still waiting fails too, since the order of the replies can no longer be trusted.
    ///
    /// In push mode (a subscriber's connection), an array reply whose first element is `message` is a
    /// published message, not the answer to a command.
    ///
    /// `Token` is what the owner completes for a command (a promise; a number in tests).
    struct StateMachine<Token> {
        /// What the owner does after an event.
        enum Action {
            case none
            /// Write these commands, in order, and flush.
            case write([ByteBuffer])
            /// The command `Token` was answered.
            case succeed(Token, RESPValue)
            /// The command `Token` failed (an error reply).
            case fail(Token, RedisError)
            /// A published message arrived (push mode).
            case push(RESPValue)
            /// Close the connection (if still open) for `error`, and fail each token with its error.
            case close(error: RedisError, failing: [(Token, RedisError)])
        }

        /// What the owner does with its one scheduled check.
        enum TimerAction: Equatable {
            case none
            /// Schedule the check for `deadline`, in place of any scheduled one.
            case arm(NIODeadline)
            /// Cancel the scheduled check.
            case cancel
        }

        private enum State {
            /// Before the connection is established: commands wait.
            case connecting
            /// The handshake is in flight: commands wait.
            case handshaking
            case ready
            case closed(RedisError)
        }

        private enum Entry {
            case handshake(name: String, deadline: NIODeadline)
            case command(Token, deadline: NIODeadline)

            var deadline: NIODeadline {
                switch self {
                case .handshake(_, let deadline), .command(_, let deadline): deadline
                }
            }
        }

        private struct Waiting {
            var command: ByteBuffer
            var token: Token
            var deadline: NIODeadline
        }

        private var state = State.connecting
        /// Written and not yet answered, oldest first. Deadlines grow along it (handshake entries are
        /// answered before any command is written).
        private var inFlight = CircularBuffer<Entry>()
        /// Given before the handshake was answered, oldest first.
        private var waiting = CircularBuffer<Waiting>()
        /// The deadline the scheduled check is armed for; `nil` while none is scheduled.
        private var armed: NIODeadline?
        private let handshake: [(name: String, command: ByteBuffer)]
        private let timeout: TimeAmount
        private let pushes: Bool
        /// Replaced by `***` in a refused handshake's message.
        private let secret: String?

        /// A connection that sends `handshake` (each command with its name for messages) first, bounds each
        /// command by `timeout`, treats messages as pushes when `pushes`, and never shows `secret`.
        init(
            handshake: [(name: String, command: ByteBuffer)],
            timeout: TimeAmount,
            pushes: Bool = false,
            secret: String? = nil
        ) {
            self.handshake = handshake
            self.timeout = timeout
            self.pushes = pushes
            self.secret = secret.flatMap { $0.isEmpty ? nil : $0 }
        }

        /// Whether the connection is closed (or failed): a new command would fail at once.
        var isClosed: Bool {
            if case .closed = state { return true }
            return false
        }

        /// Whether the connection has not been established yet (nor failed).
        var isConnecting: Bool {
            if case .connecting = state { return true }
            return false
        }

        /// Why the connection closed; `nil` while it is open or connecting.
        var closeReason: RedisError? {
            if case .closed(let error) = state { return error }
            return nil
        }

        /// How many commands wait for an answer (written or not), handshake excluded.
        var pendingCount: Int {
            waiting.count + inFlight.count { if case .command = $0 { true } else { false } }
        }

        // MARK: - Events

        /// The owner sends `command` at `now`, to be answered through `token`.
        mutating func send(_ command: ByteBuffer, token: Token, now: NIODeadline) -> Action {
            let deadline = now + timeout
            switch state {
            case .closed(let error):
                return .fail(token, error)
            case .ready:
                inFlight.append(.command(token, deadline: deadline))
                return .write([command])
            case .connecting, .handshaking:
                waiting.append(Waiting(command: command, token: token, deadline: deadline))
                return .none
            }
        }

        /// The connection was established at `now`: the handshake, or the waiting commands, go out.
        mutating func connected(now: NIODeadline) -> Action {
            guard case .connecting = state else { return .none }
            guard !handshake.isEmpty else { return becomeReady() }
            state = .handshaking
            for step in handshake { inFlight.append(.handshake(name: step.name, deadline: now + timeout)) }
            return .write(handshake.map { $0.command })
        }

        /// A whole reply arrived.
        mutating func received(_ value: RESPValue) -> Action {
            if case .closed = state { return .none }
            if pushes, Self.isMessage(value) { return .push(value) }
            guard let entry = inFlight.popFirst() else {
                return close(.protocolError("a reply to no command"))
            }
            switch entry {
            case .handshake(let name, _):
                if case .error(let message) = value {
                    return close(.connectionFailed("\(name) refused: \(redacted(message))"))
                }
                return inFlight.isEmpty ? becomeReady() : .none
            case .command(let token, _):
                if case .error(let message) = value { return .fail(token, .server(message)) }
                return .succeed(token, value)
            }
        }

        /// The scheduled check ran at `now`: a command past its deadline closes the connection.
        mutating func timerFired(now: NIODeadline) -> Action {
            armed = nil
            if case .closed = state { return .none }
            guard let earliest = earliestDeadline, earliest <= now else { return .none }
            var failing: [(Token, RedisError)] = []
            let abandoned = RedisError.connectionFailed("abandoned: an earlier command timed out")
            for entry in inFlight {
                if case .command(let token, let deadline) = entry {
                    failing.append((token, deadline <= now ? .timeout : abandoned))
                }
            }
            for command in waiting { failing.append((command.token, command.deadline <= now ? .timeout : abandoned)) }
            inFlight.removeAll()
            waiting.removeAll()
            state = .closed(.timeout)
            return .close(error: .timeout, failing: failing)
        }

        /// The connection failed or closed (connect refused, reset, end of stream, unreadable bytes, the
        /// owner's shutdown): every command still waiting fails with `error`.
        mutating func closed(_ error: RedisError) -> Action {
            if case .closed = state { return .none }
            return close(error)
        }

        /// What to do with the scheduled check now; asked after every event.
        mutating func timer() -> TimerAction {
            if case .closed = state {
                guard armed != nil else { return .none }
                armed = nil
                return .cancel
            }
            // A check armed for earlier than needed stays: it finds nothing due and is armed again then,
            // which costs one timer per `timeout` instead of one per command.
            guard let earliest = earliestDeadline else { return .none }
            if let armed, armed <= earliest { return .none }
            armed = earliest
            return .arm(earliest)
        }

        // MARK: - Helpers

        private var earliestDeadline: NIODeadline? {
            switch (inFlight.first?.deadline, waiting.first?.deadline) {
            case (let written?, let unwritten?): min(written, unwritten)
            case (let written?, nil): written
            case (nil, let unwritten?): unwritten
            case (nil, nil): nil
            }
        }

        private mutating func becomeReady() -> Action {
            state = .ready
            guard !waiting.isEmpty else { return .none }
            var commands: [ByteBuffer] = []
            commands.reserveCapacity(waiting.count)
            while let command = waiting.popFirst() {
                inFlight.append(.command(command.token, deadline: command.deadline))
                commands.append(command.command)
            }
            return .write(commands)
        }

        private mutating func close(_ error: RedisError) -> Action {
            var failing: [(Token, RedisError)] = []
            for entry in inFlight {
                if case .command(let token, _) = entry { failing.append((token, error)) }
            }
            for command in waiting { failing.append((command.token, error)) }
            inFlight.removeAll()
            waiting.removeAll()
            state = .closed(error)
            return .close(error: error, failing: failing)
        }

        private func redacted(_ message: String) -> String {
            guard let secret else { return message }
            return message.replacing(secret, with: "***")
        }

        private static func isMessage(_ value: RESPValue) -> Bool {
            guard case .array(let elements) = value, elements.count == 3 else { return false }
            return elements[0].string == "message"
        }
    }
}
