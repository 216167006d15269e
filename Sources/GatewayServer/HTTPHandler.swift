import GatewayCore
import Logging
import NIOCore
import NIOHTTP1

/// Serves one client connection: routes each request, writes each answer whole, keeps the connection
/// alive when the client asks to, and closes it on protocol errors and when idle.
///
/// Runs on the connection's event loop only, first in the pipeline: it reads requests from the bytes with
/// a ``RequestReader`` and writes the bytes of its answers itself (``ResponseEncoding``). It answers one
/// request at a time: requests that arrive while an answer is being prepared (pipelining) wait as bytes
/// in the reader, unread, and nothing more is read from the socket until they are answered. Two guards keep
/// one client from hurting the process: answers are not written while the socket cannot take more (a
/// client that does not read stops being read), and waiting requests are answered in a loop, not from
/// inside the previous answer's write, so a long pipeline never deepens the stack. Answers written while
/// reading are flushed once the read is done, so a pipeline's answers leave in as few system calls as the
/// socket allows.
final class HTTPHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Waiting for a request head.
        case idle
        /// A head arrived; its body is arriving (kept for a forwarded write, else only counted).
        case receiving(RequestHead, Route, bodyBytes: Int, body: ByteBuffer?)
        /// The whole request is in, but the socket cannot take an answer yet.
        case waitingForWritable(RequestHead, Route, body: ByteBuffer?)
        /// The answer is being prepared; further requests wait in `reader`.
        case responding
        /// Closing; nothing more is read or written.
        case closed
    }

    /// How long a connection refused for an oversized body may go on sending before it is cut off.
    private static let lingerAfterRefusal = TimeAmount.seconds(2)
    /// The largest body a forwarded write may have.
    static let maxForwardedBodyBytes = 1024 * 1024

    /// What the access log and the metrics need of the request being answered.
    private struct Current {
        var method: String
        /// The request target (written to the log by ``AccessLogTarget``, which masks what may be secret).
        var uri: String
        var route: GatewayMetrics.RouteLabel
        var requestID: String
        var started: NIODeadline
        var team: String?
        /// Whether this request gets an access log line (read once, with the settings, as it begins).
        var logged: Bool
        /// Why it was refused before reaching a route, if it was.
        var refusal: RefusalReason? = nil
    }

    private let context: ServerContext
    /// The context's list service and metrics, kept by the connection so that using them does not retain
    /// objects every event loop shares (each retain would take their cache line from the other cores).
    private let service: ListService
    private let metrics: GatewayMetrics?
    /// The access log's handler when it writes lines itself (``ServerContext/accessLogHandler``), kept by
    /// the connection: used in place, not copied out of the shared context on every request.
    private let accessLogHandler: GatewayLogHandler?
    private let maxBodyBytes: Int
    private let idleTimeout: TimeAmount
    private var state = State.idle
    /// Checks for idleness; at most one is scheduled at a time.
    private var idleTimer: Scheduled<Void>?
    /// When the connection last started waiting for a request, or a request last began.
    private var lastActivity = NIODeadline.uptimeNanoseconds(0)
    /// A `read` held back because the socket was not writable or requests wait.
    private var readPending = false
    /// The requests read: parts are taken from it only while they can be handled at once, so requests that
    /// arrive while one is being answered wait in it as bytes.
    private var reader: RequestReader
    /// Set while requests are being taken from `reader`, so an answer written meanwhile does not start
    /// taking them again from inside itself.
    private var isTakingRequests = false
    /// Set while bytes read are being handled: answers written then are flushed when the read is done.
    private var isReading = false
    /// An answer was written and not yet flushed.
    private var needsFlush = false
    /// Shutdown asked this connection to close: after the answer under way, if any.
    private var isQuiescing = false
    /// The client shut down its sending side (a half-close): the requests it sent whole are answered, then
    /// the connection closes.
    private var inputClosed = false
    /// Whether the socket takes more, as the last writability change said: read here on every request
    /// rather than asked of the channel (NIO announces every change).
    private var isWritable = true
    /// The channel's allocator, for answers' heads.
    private var allocator = ByteBufferAllocator()
    /// The last answer's head buffer, to write the next head into. Once the socket has taken an answer,
    /// NIO no longer holds its buffer, and clearing it keeps its memory: a head then costs no allocation.
    /// (While NIO still holds it, clearing it makes a new one, as copy-on-write does.)
    private var spareHead: ByteBuffer?

    private var current: Current?
    /// The settings as last read, and their version (``ServerContext/settingsVersion``).
    private var settings: (settings: ServerContext.Settings, version: Int)
    /// The client's address as the access log writes it, made on first use.
    private var clientAddress: String?
    /// Request ids made here: a random prefix per connection and a sequence number.
    private let idPrefix = UInt32.random(in: .min ... .max)
    private var requestCount = 0

    /// A handler reading requests with heads up to `maxHeadBytes` that take at most `headTimeout` to arrive,
    /// bodies up to `maxBodyBytes`, and closing the connection after `idleTimeout` without a request.
    init(
        context: ServerContext,
        maxHeadBytes: Int,
        headTimeout: TimeAmount,
        maxBodyBytes: Int,
        idleTimeout: TimeAmount
    ) {
        self.context = context
        self.reader = RequestReader(maxHeadBytes: maxHeadBytes, headTimeout: headTimeout)
        self.service = context.service
        self.metrics = context.metrics
        self.accessLogHandler = context.accessLogHandler
        self.settings = context.versionedSettings
        self.maxBodyBytes = maxBodyBytes
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        allocator = context.channel.allocator
        if context.channel.isActive { armIdleTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        state = .closed
        reader.close()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .some(.inputClosed) = event as? ChannelEvent {
            inputClosed = true
            closeIfNothingMoreToAnswer(context: context)
            return
        }
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // Between requests: close now. Otherwise the answer under way says `Connection: close`.
        isQuiescing = true
        if case .idle = state {
            state = .closed
            context.close(promise: nil)
        }
    }

    /// Idle between requests, a client too slow to send a whole request, or one that stopped reading
    /// answers: the timer closes the connection. It does not run while an answer is being prepared (the
    /// upstream timeout bounds that).
    ///
    /// Each request only moves `lastActivity`; the one timer, when it fires early, re-arms itself for what
    /// is left. Scheduling and cancelling a timer per request would cost more than the rest of a cache hit.
    private func armIdleTimer(context: ChannelHandlerContext, now: NIODeadline? = nil) {
        lastActivity = now ?? context.eventLoop.now
        guard idleTimer == nil else { return }
        scheduleIdleCheck(in: idleTimeout, context: context)
    }

    private func scheduleIdleCheck(in delay: TimeAmount, context: ChannelHandlerContext) {
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            self.idleTimer = nil
            switch self.state {
            case .idle, .receiving, .waitingForWritable:
                let deadline = self.lastActivity + self.idleTimeout
                let now = context.eventLoop.now
                if now >= deadline {
                    self.state = .closed
                    context.close(promise: nil)
                } else {
                    self.scheduleIdleCheck(in: deadline - now, context: context)
                }
            case .responding:
                // Looked at again after the answer; `write` moves `lastActivity` then.
                self.scheduleIdleCheck(in: self.idleTimeout, context: context)
            case .closed:
                break
            }
        }
    }

    /// After a half-close: nothing more can arrive, so once no answer is under way (and what is left read is
    /// at most the start of a request that will never be finished), the connection closes.
    private func closeIfNothingMoreToAnswer(context: ChannelHandlerContext) {
        switch state {
        case .idle, .receiving:
            state = .closed
            reader.close()
            flushIfNeeded(context: context)
            context.close(promise: nil)
        case .waitingForWritable, .responding, .closed:
            break
        }
    }

    func read(context: ChannelHandlerContext) {
        // Back-pressure: while the client is not taking answers, or requests wait, stop taking requests.
        guard mayRead else {
            readPending = true
            return
        }
        context.read()
    }

    /// Whether the socket may be read: the client takes answers, and no request read waits for an earlier
    /// one's answer. (While requests are taken, what is left unread is the start of one, and more is needed.)
    private var mayRead: Bool {
        isWritable && (!reader.hasUnreadBytes || takesRequests)
    }

    /// Whether the next part of a request can be handled now.
    private var takesRequests: Bool {
        switch state {
        case .idle, .receiving: return true
        case .waitingForWritable, .responding, .closed: return false
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        if isWritable {
            if case .waitingForWritable(let head, let route, let body) = state {
                state = .responding
                respond(to: head, route: route, body: body, context: context)
            }
            takeRequests(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .closed = state { return }
        reader.append(unwrapInboundIn(data))
        isReading = true
        takeRequests(context: context)
        isReading = false
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
        context.fireChannelReadComplete()
    }

    private func flushIfNeeded(context: ChannelHandlerContext) {
        guard needsFlush else { return }
        needsFlush = false
        context.flush()
    }

    /// Takes the requests read, in order, for as long as each is answered at once; then reads again.
    private func takeRequests(context: ChannelHandlerContext) {
        guard !isTakingRequests else { return }
        isTakingRequests = true
        while takesRequests {
            let part: RequestPart?
            do {
                part = try reader.next(context: context)
            } catch {
                refuse(error, context: context)
                break
            }
            guard let part else { break }
            handle(part, context: context)
        }
        isTakingRequests = false
        // While reading, `channelReadComplete` flushes, once for every answer the read brought about.
        if !isReading { flushIfNeeded(context: context) }
        if inputClosed { closeIfNothingMoreToAnswer(context: context) }
        if readPending, mayRead {
            readPending = false
            context.read()
        }
    }

    private func handle(_ part: RequestPart, context: ChannelHandlerContext) {
        switch part {
        case .request(let head):
            guard case .idle = state else { return }
            armIdleTimer(context: context)
            if let refusal = Self.refusal(of: head, bodyLimit: nil) {
                refuseBeforeBody(refusal, head: head, context: context)
                return
            }
            let route = Route(method: head.method, uri: head.uri)
            complete(head, route: route, body: Self.emptyBody(for: route), context: context)
        case .head(let head):
            guard case .idle = state else { return }
            armIdleTimer(context: context)
            let route = Route(method: head.method, uri: head.uri)
            let body = Self.emptyBody(for: route)
            if let refusal = Self.refusal(of: head, bodyLimit: bodyLimit(keepsBody: body != nil)) {
                refuseBeforeBody(refusal, head: head, context: context)
                return
            }
            // Identity before the body: a request without a known team token is answered now, its body never
            // read (so unknown clients cannot make the gateway hold bodies in memory), and the connection
            // closes.
            if route.needsTeam, case .failure = team(for: head, settings: refreshedSettings()) {
                state = .responding
                respond(to: head, route: route, body: nil, beforeBody: true, context: context)
                return
            }
            state = .receiving(head, route, bodyBytes: 0, body: body)
            // RFC 9110, 10.1.1: the client waits for this before it sends the body (HTTP/1.0 clients never
            // ask for it, and theirs is ignored).
            if head.expectation == .continue, head.version == .http1_1 {
                context.write(
                    wrapOutboundOut(allocator.buffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")),
                    promise: nil
                )
                needsFlush = true
                if !isReading { flushIfNeeded(context: context) }
            }
        case .body(var chunk):
            guard case .receiving(let head, let route, let bodyBytes, let kept) = state else { return }
            let total = bodyBytes + chunk.readableBytes
            guard total <= bodyLimit(keepsBody: kept != nil) else {
                state = .responding
                beginRefusal(.bodyTooLarge, method: head.method.rawValue, context: context)
                write(
                    GatewayError.bodyTooLarge.response(),
                    version: head.version,
                    isHead: false,
                    keepAlive: false,
                    linger: true,
                    context: context
                )
                return
            }
            guard var body = kept else {
                state = .receiving(head, route, bodyBytes: total, body: nil)
                return
            }
            // Drop the state's copy first, so the append below does not copy the buffer.
            state = .receiving(head, route, bodyBytes: total, body: nil)
            body.writeBuffer(&chunk)
            state = .receiving(head, route, bodyBytes: total, body: body)
        case .end:
            guard case .receiving(let head, let route, _, let body) = state else { return }
            complete(head, route: route, body: body, context: context)
        }
    }

    /// The largest body a request may send: a forwarded write's (kept) or any other's (counted, dropped).
    private func bodyLimit(keepsBody: Bool) -> Int {
        keepsBody ? Self.maxForwardedBodyBytes : maxBodyBytes
    }

    /// Why a head is refused before anything else is done with it (and before its body is read), if it is:
    /// an HTTP/1.1 request without `Host` (RFC 9112, 3.2), an expectation the gateway cannot meet (RFC 9110,
    /// 10.1.1), or a declared body over `bodyLimit` (answered at once, so a client waiting on
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
    private func refuseBeforeBody(
        _ refusal: (error: GatewayError, reason: RefusalReason),
        head: RequestHead,
        context: ChannelHandlerContext
    ) {
        state = .responding
        beginRefusal(refusal.reason, method: head.method.rawValue, context: context)
        write(
            refusal.error.response(),
            version: head.version,
            isHead: false,
            keepAlive: false,
            linger: true,
            context: context
        )
    }

    /// Notes a request refused before it reached a route, so that its answer gets an access log line and
    /// counts in `xi_gateway_refused_requests_total`: its method when it was read, never its target or
    /// anything else it sent.
    private func beginRefusal(_ reason: RefusalReason, method: String?, context: ChannelHandlerContext) {
        requestCount += 1
        current = Current(
            method: method ?? "-",
            uri: "-",
            route: .other,
            requestID: Self.requestID(prefix: idPrefix, sequence: requestCount),
            started: context.eventLoop.now,
            team: nil,
            logged: settings.settings.accessLog,
            refusal: reason
        )
    }

    /// The body a request to `route` starts with: empty for a forwarded write (whose body is kept), `nil`
    /// for the others (whose bodies are only counted, and dropped).
    private static func emptyBody(for route: Route) -> ByteBuffer? {
        if case .passthrough(let passthrough, _) = route, passthrough.method == .POST { return ByteBuffer() }
        return nil
    }

    /// The whole request is in: answers it, once the socket takes an answer.
    private func complete(_ head: RequestHead, route: Route, body: ByteBuffer?, context: ChannelHandlerContext) {
        guard isWritable else {
            state = .waitingForWritable(head, route, body: body)
            armIdleTimer(context: context)
            return
        }
        state = .responding
        respond(to: head, route: route, body: body, context: context)
    }

    /// The client's `X-Request-Id` when it is sane (1 to 128 of `A-Z a-z 0-9 . _ : -`), else a new one.
    private func requestID(for head: RequestHead) -> String {
        if let given = head.first(name: "x-request-id"), (1...128).contains(given.utf8.count),
            given.utf8.allSatisfy({ byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
                    UInt8(ascii: "-"):
                    return true
                default:
                    return false
                }
            })
        {
            return given
        }
        requestCount += 1
        return Self.requestID(prefix: idPrefix, sequence: requestCount)
    }

    /// `prefix` in hexadecimal, `-`, and `sequence` in decimal (a connection's request ids), written in one
    /// pass: up to 15 bytes, the id is a small string, and making it allocates nothing.
    static func requestID(prefix: UInt32, sequence: Int) -> String {
        // 8 hexadecimal digits, the dash, and a sign and 19 digits at most.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
            var end = buffer.count
            func prepend(_ byte: UInt8) {
                end -= 1
                buffer[end] = byte
            }
            var decimal = sequence.magnitude
            repeat {
                prepend(UInt8(ascii: "0") + UInt8(decimal % 10))
                decimal /= 10
            } while decimal > 0
            if sequence < 0 { prepend(UInt8(ascii: "-")) }
            prepend(UInt8(ascii: "-"))
            var hex = prefix
            repeat {
                let digit = UInt8(hex & 0xF)
                prepend(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
                hex >>= 4
            } while hex > 0
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[end...]), as: UTF8.self)
        }
    }

    /// The team a request comes from when `CLIENTS_FILE` is set: `.success(nil)` while the gateway is
    /// open, `.failure` for a missing or unknown token. The token is looked up by its digest, so the time
    /// taken does not depend on how much of it is right.
    private func team(
        for head: RequestHead,
        settings: ServerContext.Settings
    ) -> Result<ListService.Spender?, GatewayError> {
        guard let teams = settings.teams else { return .success(nil) }
        var token = head.first(name: "xi-api-key")
        if token == nil, let authorization = head.first(name: "authorization"),
            authorization.hasPrefix("Bearer ")
        {
            token = String(authorization.dropFirst("Bearer ".count))
        }
        guard let token, let team = teams.team(forToken: token) else { return .failure(.invalidAPIKey) }
        return .success(
            ListService.Spender(team: team.name, perMinute: team.upstreamPerMinute ?? settings.defaultUpstreamPerMinute)
        )
    }

    /// The settings in force, read again when a reload changed them.
    private func refreshedSettings() -> ServerContext.Settings {
        if context.settingsVersion != settings.version { settings = context.versionedSettings }
        return settings.settings
    }

    /// Answers a whole request; with `beforeBody`, one whose body was not read (its team is unknown), and
    /// whose answer therefore closes the connection.
    private func respond(
        to head: RequestHead,
        route: Route,
        body: ByteBuffer?,
        beforeBody: Bool = false,
        context: ChannelHandlerContext
    ) {
        let requestID = requestID(for: head)
        let reply = Reply(version: head.version, keepAlive: head.isKeepAlive)
        let settings = refreshedSettings()
        current = Current(
            method: head.method.rawValue,
            uri: head.uri,
            route: route.metricLabel,
            requestID: requestID,
            // When its head arrived (noted just then, for the idle timer): no second look at the clock.
            started: lastActivity,
            team: nil,
            logged: settings.accessLog
        )
        var spender: ListService.Spender?
        switch route {
        case .list, .passthrough:
            // Before anything else: an unknown client learns nothing, not even whether its query is valid.
            switch team(for: head, settings: settings) {
            case .success(let found):
                spender = found
                current?.team = found?.team
            case .failure(let error):
                var response = error.response()
                if case .list = route {
                    response.cacheStatus = .refused(detail: error.shortDescription)
                }
                write(
                    response,
                    version: reply.version,
                    isHead: false,
                    keepAlive: reply.keepAlive && !beforeBody,
                    linger: beforeBody,
                    context: context
                )
                return
            }
        default:
            break
        }
        switch route {
        case .passthrough(let passthrough, let isHead):
            guard let service = self.context.passthrough else {
                write(GatewayError.notFound.response(), to: reply, context: context)
                return
            }
            service.forward(
                passthrough,
                body: body,
                contentType: head.first(name: "content-type"),
                requestID: requestID,
                spender: spender,
                on: context.eventLoop
            ).assumeIsolated().whenSuccess { response in
                self.write(response, to: reply, isHead: isHead, context: context)
            }
        case .health(let isHead):
            write(
                OperationsEndpoints(context: self.context).health(),
                to: reply,
                isHead: isHead,
                context: context
            )
        case .readiness(let isHead):
            write(
                OperationsEndpoints(context: self.context).readiness(),
                to: reply,
                isHead: isHead,
                context: context
            )
        case .metrics:
            write(
                OperationsEndpoints(context: self.context).metrics(),
                to: reply,
                context: context
            )
        case .purge(let query):
            let response = OperationsEndpoints(context: self.context).purge(
                query: query,
                authorization: head.first(name: "authorization")
            )
            write(response, to: reply, context: context)
        case .stats:
            write(
                OperationsEndpoints(context: self.context).stats(
                    authorization: head.first(name: "authorization")
                ),
                to: reply,
                context: context
            )
        case .list(let query, let isHead):
            let answer = service.answer(
                toQuery: query,
                on: context.eventLoop,
                requestID: requestID,
                spender: spender
            )
            switch answer {
            case .ready(let response):
                write(response, to: reply, isHead: isHead, context: context)
            case .pending(let future):
                future.assumeIsolated().whenSuccess { response in
                    self.write(response, to: reply, isHead: isHead, context: context)
                }
            }
        case .refuse(let refusal):
            let error: GatewayError
            var response: GatewayResponse
            switch refusal {
            case .notFound:
                error = .notFound
                response = error.response()
            case .methodNotAllowed(let allow):
                error = .methodNotAllowed(allow: allow)
                response = error.response()
                if head.uri.utf8.starts(with: Route.listPath.utf8) {
                    // Every answer on the list path says what the cache did: here, nothing.
                    response.cacheStatus = .refused(detail: error.shortDescription)
                    response.age = 0
                }
            case .notOriginForm:
                error = .badRequest("only origin-form request targets (/path?query) are served")
                response = error.response()
            }
            write(
                response,
                to: Reply(version: reply.version, keepAlive: reply.keepAlive && !error.closesConnection),
                context: context
            )
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        state = .closed
        context.close(promise: nil)
    }

    /// A request the reader could not read (taken only while no answer is under way): answered `400`, or
    /// `431` for a head too large, and the connection closes, as the stream cannot be trusted past it.
    private func refuse(_ error: any Error, context: ChannelHandlerContext) {
        let gatewayError: GatewayError =
            error as? HTTPParserError == .headerOverflow ? .headersTooLarge : .badRequest("malformed HTTP request")
        state = .responding
        beginRefusal(reader.lastRefusal ?? .invalidRequestLine, method: nil, context: context)
        write(gatewayError.response(), version: .http1_1, isHead: false, keepAlive: false, context: context)
    }

    /// What answering a request needs of its head: the version, and whether the connection stays open.
    /// Answers keep this rather than the head, which holds the bytes it was read from: an answer that waits
    /// for the upstream would keep the connection's read buffer all that time.
    private struct Reply {
        var version: HTTPVersion
        var keepAlive: Bool
    }

    private func write(
        _ response: GatewayResponse,
        to reply: Reply,
        isHead: Bool = false,
        context: ChannelHandlerContext
    ) {
        write(response, version: reply.version, isHead: isHead, keepAlive: reply.keepAlive, context: context)
    }

    /// The access log line and the metrics of one answered request.
    private func finish(
        _ request: Current,
        response: GatewayResponse,
        now: NIODeadline,
        context: ChannelHandlerContext
    ) {
        let elapsed = UInt64(max(0, (now - request.started).nanoseconds))
        let status = Int(response.status.code)
        metrics?.request(
            route: request.route,
            status: status,
            cache: response.trace.cache,
            nanoseconds: elapsed
        )
        if let team = request.team { metrics?.team(team, trace: response.trace) }
        if let refusal = request.refusal { metrics?.refused(refusal) }
        guard request.logged else { return }
        if clientAddress == nil { clientAddress = context.channel.remoteAddress?.ipAddress ?? "-" }
        let entry = AccessLogEntry(
            requestID: request.requestID,
            client: clientAddress ?? "-",
            method: request.method,
            path: AccessLogTarget.logged(request.uri, route: request.route),
            status: status,
            cache: response.trace.cache.rawValue,
            nanoseconds: elapsed,
            bytes: response.body.readableBytes,
            team: request.team,
            upstreamStatus: response.trace.upstreamStatus,
            upstreamNanoseconds: response.trace.upstreamNanoseconds,
            reason: request.refusal?.rawValue
        )
        if accessLogHandler != nil {
            accessLogHandler?.logAccess(entry)
        } else {
            self.context.accessLogger.info(AccessLogEntry.message, metadata: entry.metadata)
        }
    }

    /// Writes a whole answer. After an answer that closes the connection, `linger` closes only the sending
    /// side at first, so a client still sending (a refused body) reads the answer instead of a reset.
    private func write(
        _ response: GatewayResponse,
        version: HTTPVersion,
        isHead: Bool,
        keepAlive: Bool,
        linger: Bool = false,
        context: ChannelHandlerContext
    ) {
        guard case .responding = state else { return }
        let now = context.eventLoop.now
        // After a half-close, the last answer closes the connection.
        let keepAlive = keepAlive && !isQuiescing && !(inputClosed && !reader.hasUnreadBytes)
        let sendsBody = !isHead && response.body.readableBytes > 0
        // Small bodies (errors, refusals) go in the head's buffer: one buffer, one iovec.
        let copiesBody = sendsBody && response.body.readableBytes <= Self.bodyBytesCopiedIntoHead
        // Room for a hit's head as `writeResponseHead` reserves it, so that it is never reallocated.
        let headCapacity = 512 + (copiesBody ? response.body.readableBytes : 0)
        // Taken out of the property, so that `head` is its only reference when cleared.
        var head = spareHead.take() ?? allocator.buffer(capacity: headCapacity)
        head.clear(minimumCapacity: headCapacity)
        let connection: StaticString?
        if !keepAlive {
            connection = "Connection: close\r\n"
        } else if version.major == 1, version.minor == 0 {
            connection = "Connection: keep-alive\r\n"
        } else {
            connection = nil
        }
        head.writeResponseHead(
            version: version,
            response: response,
            requestID: current?.requestID,
            connection: connection
        )
        if let current {
            finish(current, response: response, now: now, context: context)
            self.current = nil
        }
        if copiesBody {
            var body = response.body
            head.writeBuffer(&body)
        }
        // When the connection closes after this answer, it closes once the last buffer is written.
        let written = keepAlive ? nil : context.eventLoop.makePromise(of: Void.self)
        if keepAlive, head.capacity <= Self.largestSpareHead { spareHead = head }
        if sendsBody, !copiesBody {
            context.write(wrapOutboundOut(head), promise: nil)
            context.write(wrapOutboundOut(response.body), promise: written)
        } else {
            context.write(wrapOutboundOut(head), promise: written)
        }
        if let written {
            state = .closed
            reader.close()
            needsFlush = false
            context.flush()
            written.futureResult.assumeIsolated().whenComplete { _ in
                guard linger else {
                    context.close(promise: nil)
                    return
                }
                context.close(mode: .output, promise: nil)
                context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerAfterRefusal) {
                    context.close(promise: nil)
                }
            }
        } else {
            state = .idle
            armIdleTimer(context: context, now: now)
            if isReading || isTakingRequests {
                needsFlush = true
            } else {
                context.flush()
            }
            takeRequests(context: context)
        }
    }

    /// Bodies up to this size are copied after the head rather than written as a buffer of their own.
    private static let bodyBytesCopiedIntoHead = 1024
    /// The largest head buffer a connection keeps between answers (a hit's takes 512 bytes).
    private static let largestSpareHead = 4096
}

@available(*, unavailable)
extension HTTPHandler: Sendable {}
