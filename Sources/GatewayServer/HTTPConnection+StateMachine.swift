import NIOCore
import NIOHTTP1

extension HTTPConnection {
    /// What one client connection does next, given what happened: every decision of serving HTTP/1.1 on it,
    /// with no channel inside (``HTTPHandler`` feeds it events and performs the actions it returns).
    ///
    /// It answers one request at a time: requests that arrive while an answer is being prepared (pipelining)
    /// wait as bytes in the reader, unread, and nothing more is read from the socket until they are answered.
    /// Answers are not begun while the socket cannot take more (a client that does not read stops being
    /// read). A request's body is kept for a forwarded write, up to ``maxForwardedBodyBytes``, and only
    /// counted otherwise, up to the configured limit. A head is refused before its body when it lacks `Host`,
    /// expects what the gateway cannot meet, declares too large a body, or comes without a known team token
    /// on a route that needs one; such an answer closes the connection after lingering, so the client reads
    /// it rather than a reset. Answers written while a read is handled are flushed once, when the read is
    /// done, so a pipeline's answers leave in as few system calls as the socket allows; others at once.
    struct StateMachine {
        /// The largest body a forwarded write may have.
        static let maxForwardedBodyBytes = 1024 * 1024
        /// How long a connection refused before or during its body may go on sending before it is cut off.
        static let lingerAfterRefusal = TimeAmount.seconds(2)

        /// A request whose body is arriving, or which waits for the socket to take its answer.
        struct Request {
            var head: RequestHead
            var route: Route
            var bodyBytes: Int
            /// The body so far when it is kept (a forwarded write), else `nil`.
            var body: ByteBuffer?
        }

        /// How the answer under way ends the exchange. Kept rather than the head, which holds the bytes it
        /// was read from: an answer that waits for the upstream would keep the connection's read buffer.
        struct Reply: Equatable {
            var version: HTTPVersion
            var keepAlive: Bool
            /// After the answer, close the sending side first and the connection a little later.
            var linger: Bool
        }

        /// How to write an answer.
        struct Write: Equatable {
            var version: HTTPVersion
            /// The answer is to `HEAD`: its body is measured, not sent.
            var isHead: Bool
            /// The connection stays open after it; else it closes once the answer is written (report
            /// ``lastAnswerWritten()``).
            var keepAlive: Bool
            /// Flush now, rather than when the read under way is done.
            var flush: Bool
        }

        /// What the owner does next.
        enum Action {
            case none
            /// Read from the socket (flushing first when `flush`).
            case read(flush: Bool)
            /// Flush what was written.
            case flush
            /// Answer a whole request: hand it to the responder, then report
            /// ``answerReady(isHead:closesConnection:hasUnreadBytes:)``.
            case respond(RequestHead, Route, body: ByteBuffer?)
            /// Answer `error` before reaching a route (`reason` for the log and metrics; `method` when the
            /// head was read), then report ``answerReady(isHead:closesConnection:hasUnreadBytes:)``.
            case refuse(GatewayError, RefusalReason, method: HTTPMethod?)
            /// A whole request waits until the socket takes more (``writabilityChanged(isWritable:)``): the
            /// idle clock starts again now, so a client that stops reading is closed after the idle timeout.
            case waitForWritable
            /// Write `100 Continue`, flushing it now when `flush`.
            case sendContinue(flush: Bool)
            /// Close the connection (flushing first when `flush`); the reader reads nothing more.
            case close(flush: Bool)
            /// Close the sending side now and the connection after `linger`: a client still sending (a
            /// refused body) reads the answer instead of a reset.
            case closeOutput(linger: TimeAmount)
        }

        private enum State {
            /// Waiting for a request head.
            case idle
            /// A head arrived; its body is arriving.
            case receiving(Request)
            /// The whole request is in, but the socket cannot take an answer yet.
            case waitingForWritable(Request)
            /// The answer is being prepared; further requests wait in the reader.
            case responding(Reply)
            /// Closing; nothing more is read or written.
            case closed
            /// Only while a body is appended, so that the buffer has one owner and is not copied.
            case modifying
        }

        private var state = State.idle
        private let maxBodyBytes: Int
        /// Whether the socket takes more, as the last writability change said.
        private var isWritable: Bool
        /// A `read` held back because the socket was not writable or requests wait.
        private var readPending = false
        /// Set while bytes read are being handled: answers written then are flushed when the read is done.
        private var isReading = false
        /// Set while requests are taken from the reader, so an answer written meanwhile does not start
        /// taking them again from inside itself.
        private var isTakingRequests = false
        /// An answer was written and not yet flushed.
        private var needsFlush = false
        /// Shutdown asked this connection to close: after the answer under way, if any.
        private var isQuiescing = false
        /// The client shut down its sending side: what it sent whole is answered, then the connection closes.
        private var isInputClosed = false
        /// The last answer closes the sending side first (``Reply/linger``).
        private var lingersAfterLastAnswer = false

        /// A connection counting (and dropping) bodies up to `maxBodyBytes`, except forwarded writes'.
        init(maxBodyBytes: Int, isWritable: Bool = true) {
            self.maxBodyBytes = maxBodyBytes
            self.isWritable = isWritable
        }

        /// Whether the next part of a request can be handled now.
        var takesRequests: Bool {
            switch state {
            case .idle, .receiving: return true
            case .waitingForWritable, .responding, .closed, .modifying: return false
            }
        }

        /// Whether an answer is being prepared (the idle timer does not close the connection then).
        var isAnswering: Bool {
            if case .responding = state { return true }
            return false
        }

        /// Whether the connection is closing or closed.
        var isClosed: Bool {
            if case .closed = state { return true }
            return false
        }

        // MARK: - Reading

        /// The channel asks for a read: done unless the client is not taking answers, or a request read waits
        /// for an earlier one's answer (`hasUnreadBytes` while no request is taken).
        mutating func readRequested(hasUnreadBytes: Bool) -> Action {
            guard mayRead(hasUnreadBytes: hasUnreadBytes) else {
                readPending = true
                return .none
            }
            return .read(flush: false)
        }

        /// Bytes were read: whether to take requests from them (not once closing).
        mutating func readStarted() -> Bool {
            if case .closed = state { return false }
            isReading = true
            return true
        }

        /// The bytes read were handled.
        mutating func readEnded() {
            isReading = false
        }

        /// The channel's read is complete: answers written while reading are flushed now, once.
        mutating func readComplete() -> Action {
            guard needsFlush else { return .none }
            needsFlush = false
            return .flush
        }

        /// Starts taking requests from the reader; `false` when already taking them (further up the stack).
        mutating func startTakingRequests() -> Bool {
            guard !isTakingRequests else { return false }
            isTakingRequests = true
            return true
        }

        /// Stops taking requests: flushes what was written outside a read, closes after a half-close once
        /// nothing more can be answered, or reads the read held back once it may.
        mutating func stopTakingRequests(hasUnreadBytes: Bool) -> Action {
            isTakingRequests = false
            // While reading, `readComplete` flushes, once for every answer the read brought about.
            var flush = false
            if !isReading, needsFlush {
                needsFlush = false
                flush = true
            }
            if isInputClosed, case .close(let closeFlush) = closeIfNothingMoreToAnswer() {
                return .close(flush: flush || closeFlush)
            }
            if readPending, mayRead(hasUnreadBytes: hasUnreadBytes) {
                readPending = false
                return .read(flush: flush)
            }
            return flush ? .flush : .none
        }

        /// Whether the socket may be read: the client takes answers, and no request read waits for an
        /// earlier one's answer. (While requests are taken, what is left unread is the start of one, and more
        /// is needed.)
        private func mayRead(hasUnreadBytes: Bool) -> Bool {
            isWritable && (!hasUnreadBytes || takesRequests)
        }

        /// The socket's writability changed: a request waiting for it is answered now.
        mutating func writabilityChanged(isWritable: Bool) -> Action {
            self.isWritable = isWritable
            guard isWritable, case .waitingForWritable(let request) = state else { return .none }
            return respond(to: request)
        }

        // MARK: - Requests

        /// A whole request arrived (a head that says there is no body).
        mutating func requestReceived(_ head: RequestHead, route: Route) -> Action {
            guard case .idle = state else { return .none }
            if let refusal = Self.refusal(of: head, bodyLimit: nil) { return refuseBeforeBody(refusal, head: head) }
            return complete(Request(head: head, route: route, bodyBytes: 0, body: Self.emptyBody(for: route)))
        }

        /// The head of a request with a body arrived. `isTeamUnknown`: its route needs a team, and its token
        /// names none (the owner asks the responder only for heads with bodies).
        mutating func headReceived(_ head: RequestHead, route: Route, isTeamUnknown: Bool) -> Action {
            guard case .idle = state else { return .none }
            let body = Self.emptyBody(for: route)
            if let refusal = Self.refusal(of: head, bodyLimit: bodyLimit(keepsBody: body != nil)) {
                return refuseBeforeBody(refusal, head: head)
            }
            // Identity before the body: a request without a known team token is answered now, its body never
            // read (so unknown clients cannot make the gateway hold bodies in memory), and the connection
            // closes.
            if isTeamUnknown {
                state = .responding(Reply(version: head.version, keepAlive: false, linger: true))
                return .respond(head, route, body: nil)
            }
            state = .receiving(Request(head: head, route: route, bodyBytes: 0, body: body))
            // RFC 9110, 10.1.1: the client waits for this before it sends the body (HTTP/1.0 clients never
            // ask for it, and theirs is ignored).
            guard head.expectation == .continue, head.version == .http1_1 else { return .none }
            // While reading, it leaves with the read's answers, if any; otherwise at once.
            if isReading { needsFlush = true }
            return .sendContinue(flush: !isReading)
        }

        /// A slice of the body arrived.
        mutating func bodyReceived(_ chunk: ByteBuffer) -> Action {
            guard case .receiving(var request) = state else { return .none }
            let total = request.bodyBytes + chunk.readableBytes
            guard total <= bodyLimit(keepsBody: request.body != nil) else {
                state = .responding(Reply(version: request.head.version, keepAlive: false, linger: true))
                return .refuse(.bodyTooLarge, .bodyTooLarge, method: request.head.method)
            }
            // Drop the state's copy first, so the append below does not copy the buffer.
            state = .modifying
            request.bodyBytes = total
            if request.body != nil {
                var chunk = chunk
                request.body?.writeBuffer(&chunk)
            }
            state = .receiving(request)
            return .none
        }

        /// The request's end arrived.
        mutating func endReceived() -> Action {
            guard case .receiving(let request) = state else { return .none }
            return complete(request)
        }

        /// The reader could not read a request (taken only while no answer is under way): answered `400`,
        /// or `431` for a head too large, and the connection closes, as the stream cannot be trusted past it.
        mutating func parseFailed(_ error: any Error, reason: RefusalReason?) -> Action {
            let gatewayError: GatewayError =
                error as? HTTPParserError == .headerOverflow ? .headersTooLarge : .badRequest("malformed HTTP request")
            state = .responding(Reply(version: .http1_1, keepAlive: false, linger: false))
            return .refuse(gatewayError, reason ?? .invalidRequestLine, method: nil)
        }

        /// Why a head is refused before anything else is done with it (and before its body is read), if it
        /// is: an HTTP/1.1 request without `Host` (RFC 9112, 3.2), an expectation the gateway cannot meet
        /// (RFC 9110, 10.1.1), or a declared body over `bodyLimit` (answered at once, so a client waiting on
        /// `100-continue` never sends it).
        static func refusal(of head: RequestHead, bodyLimit: Int?) -> (GatewayError, RefusalReason)? {
            if head.version == .http1_1, !head.hasHost {
                return (.badRequest("an HTTP/1.1 request needs one Host field"), .missingHost)
            }
            if head.expectation == .unsupported { return (.expectationFailed, .expectationFailed) }
            if let bodyLimit, let declared = head.contentLength, declared > bodyLimit {
                return (.bodyTooLarge, .bodyTooLarge)
            }
            return nil
        }

        /// Answers a refused head and closes: the body it may still send is not read, so the stream cannot be
        /// trusted past it.
        private mutating func refuseBeforeBody(
            _ refusal: (error: GatewayError, reason: RefusalReason),
            head: RequestHead
        ) -> Action {
            state = .responding(Reply(version: head.version, keepAlive: false, linger: true))
            return .refuse(refusal.error, refusal.reason, method: head.method)
        }

        /// The largest body a request may send: a forwarded write's (kept) or any other's (counted, dropped).
        private func bodyLimit(keepsBody: Bool) -> Int {
            keepsBody ? Self.maxForwardedBodyBytes : maxBodyBytes
        }

        /// The body a request to `route` starts with: empty for a forwarded write (whose body is kept), `nil`
        /// for the others (whose bodies are only counted, and dropped).
        private static func emptyBody(for route: Route) -> ByteBuffer? {
            if case .passthrough(let passthrough, _) = route, passthrough.method == .POST { return ByteBuffer() }
            return nil
        }

        /// The whole request is in: answers it, once the socket takes an answer.
        private mutating func complete(_ request: Request) -> Action {
            guard isWritable else {
                state = .waitingForWritable(request)
                return .waitForWritable
            }
            return respond(to: request)
        }

        private mutating func respond(to request: Request) -> Action {
            state = .responding(
                Reply(version: request.head.version, keepAlive: request.head.isKeepAlive, linger: false)
            )
            return .respond(request.head, request.route, body: request.body)
        }

        // MARK: - Answers and closing

        /// The answer under way is ready: how to write it, or `nil` when it is not to be written (the
        /// connection closed meanwhile). `closesConnection`: the answer itself closes the connection (a
        /// refusal); `hasUnreadBytes`: requests (or the start of one) wait in the reader.
        mutating func answerReady(isHead: Bool, closesConnection: Bool, hasUnreadBytes: Bool) -> Write? {
            guard case .responding(let reply) = state else { return nil }
            // After a half-close, the last answer closes the connection.
            let keepAlive =
                reply.keepAlive && !closesConnection && !isQuiescing && !(isInputClosed && !hasUnreadBytes)
            guard keepAlive else {
                state = .closed
                needsFlush = false
                lingersAfterLastAnswer = reply.linger
                return Write(version: reply.version, isHead: isHead, keepAlive: false, flush: true)
            }
            state = .idle
            let flush = !(isReading || isTakingRequests)
            if !flush { needsFlush = true }
            return Write(version: reply.version, isHead: isHead, keepAlive: true, flush: flush)
        }

        /// The answer that closes the connection was written (or could not be): how to close. After a refusal
        /// before or during a body, the sending side closes first, so that a client still sending reads the
        /// answer rather than a reset; the rest follows after ``lingerAfterRefusal``.
        func lastAnswerWritten() -> Action {
            lingersAfterLastAnswer ? .closeOutput(linger: Self.lingerAfterRefusal) : .close(flush: false)
        }

        /// The client shut down its sending side (a half-close): what it sent whole is answered, then the
        /// connection closes.
        mutating func inputClosed() -> Action {
            isInputClosed = true
            return closeIfNothingMoreToAnswer()
        }

        /// Shutdown asks the connection to close: between requests, now; otherwise the answer under way
        /// says `Connection: close`.
        mutating func quiesce() -> Action {
            isQuiescing = true
            guard case .idle = state else { return .none }
            state = .closed
            return .close(flush: false)
        }

        /// The connection closes or closed (it went inactive, an error, a timeout): nothing more is done.
        mutating func closed() {
            state = .closed
        }

        /// After a half-close: nothing more can arrive, so once no answer is under way (and what is left
        /// read is at most the start of a request that will never be finished), the connection closes.
        private mutating func closeIfNothingMoreToAnswer() -> Action {
            switch state {
            case .idle, .receiving:
                state = .closed
                let flush = needsFlush
                needsFlush = false
                return .close(flush: flush)
            case .waitingForWritable, .responding, .closed, .modifying:
                return .none
            }
        }
    }
}
