import GatewayCore
import NIOCore
import NIOHTTP1

/// Answers one connection's whole requests: routes each, authenticates its team, and asks the route's
/// service (``ListService``, ``PassthroughService``, ``OperationsEndpoints``) for the answer, now when it is
/// at hand (a cache hit costs no future) or later.
///
/// It also names each request (``requestID(for:)``) and starts its record (``RequestRecorder``). Owned by
/// one ``HTTPHandler``, on its event loop.
struct Responder {
    /// Tells when a team token has expired.
    static let wallClock = SystemCacheClock()

    /// An answer to a request.
    enum Answer {
        /// Ready now. `isHead`: its body is measured, not sent; `closes`: the connection closes after it.
        case now(GatewayResponse, isHead: Bool, closes: Bool)
        /// Ready when the future completes (it never fails).
        case later(EventLoopFuture<GatewayResponse>, isHead: Bool)
    }

    private let context: ServerContext
    /// Which routes the connection's listener serves: on the admin listener, statistics need no token.
    private let role: ListenerRole
    /// The context's list service, kept by the connection so that using it does not retain an object every
    /// event loop shares (each retain would take its cache line from the other cores).
    private let service: ListService
    /// The teams' budgets, kept by the connection for the same reason.
    private let ledger: any BudgetLedger
    /// The settings as last read, and their version (``ServerContext/settingsVersion``).
    private var settings: (settings: ServerContext.Settings, version: Int)
    /// Request ids made here: a random prefix per connection and a sequence number.
    private let idPrefix = UInt32.random(in: .min ... .max)
    private var requestCount = 0
    /// The last budget read for the `RateLimit` fields, with the ledger's version and the second it was read.
    private var budgetMemo: (team: String, version: Int, second: UInt64, state: BudgetState)?
    /// Makes trace and span ids: a few instructions each, seeded once per connection.
    private var traceIDs = TraceIDGenerator()

    /// A responder for the services of `context`.
    init(context: ServerContext, role: ListenerRole = .combined) {
        self.context = context
        self.role = role
        self.service = context.service
        self.ledger = context.service.budgetLedger
        self.settings = context.versionedSettings
    }

    /// Whether a request to `route` needs a team and its head names none: asked before its body is read.
    mutating func isTeamUnknown(_ head: RequestHead, route: Route) -> Bool {
        guard route.needsTeam, case .failure = team(for: head.fields(), settings: refreshedSettings()) else {
            return false
        }
        return true
    }

    /// Answers a whole request whose head arrived at `started`, and starts its record in `recorder`.
    mutating func answer(
        _ head: RequestHead,
        route: Route,
        body: ByteBuffer?,
        started: NIODeadline,
        recorder: inout RequestRecorder,
        on eventLoop: any EventLoop
    ) -> Answer {
        let fields = head.fields()
        let requestID = requestID(for: fields)
        let settings = refreshedSettings()
        recorder.begin(
            head,
            route: route.metricLabel,
            requestID: requestID,
            started: started,
            logged: settings.accessLog
        )
        var spender: ListService.Spender?
        var correlation: Correlation?
        switch route {
        case .list, .passthrough:
            let made = self.correlation(for: fields, requestID: requestID)
            recorder.noteTrace(made.trace)
            correlation = made
            // Before anything else: an unknown client learns nothing, not even whether its query is valid.
            switch team(for: fields, settings: settings) {
            case .success(let found):
                spender = found
                recorder.noteTeam(found?.team)
            case .failure(let error):
                var response = error.response()
                if case .list = route {
                    response.cacheStatus = .refused(detail: error.shortDescription)
                    response.variesByEncoding = service.compression
                }
                return .now(response, isHead: false, closes: false)
            }
        default:
            break
        }
        switch route {
        case .passthrough(let passthrough, let isHead):
            guard let service = context.passthrough else {
                return .now(GatewayError.notFound.response(), isHead: false, closes: false)
            }
            let future = service.forward(
                passthrough,
                body: body,
                contentType: head.first(name: "content-type"),
                correlation: correlation ?? Correlation(requestID: requestID),
                spender: spender,
                on: eventLoop
            )
            return .later(withBudget(future, spender: spender), isHead: isHead)
        case .health(let isHead):
            return .now(OperationsEndpoints(context: context).health(), isHead: isHead, closes: false)
        case .readiness(let isHead):
            return .now(OperationsEndpoints(context: context).readiness(), isHead: isHead, closes: false)
        case .metrics:
            return .now(OperationsEndpoints(context: context).metrics(), isHead: false, closes: false)
        case .purge(let query):
            let response = OperationsEndpoints(context: context).purge(
                query: query,
                authorization: fields.authorization
            )
            return .now(response, isHead: false, closes: false)
        case .stats:
            let response = OperationsEndpoints(context: context).stats(
                authorization: fields.authorization,
                open: role == .admin
            )
            return .now(response, isHead: false, closes: false)
        case .statusPage(let isHead):
            guard StatusPage.isDirect(host: head.first(name: "host")) else {
                return .now(GatewayError.hostNotDirect.response(), isHead: isHead, closes: false)
            }
            return .now(StatusPage.response, isHead: isHead, closes: false)
        case .status:
            guard StatusPage.isDirect(host: head.first(name: "host")) else {
                return .now(GatewayError.hostNotDirect.response(), isHead: false, closes: false)
            }
            return .now(OperationsEndpoints(context: context).status(), isHead: false, closes: false)
        case .list(let query, let isHead):
            let freshness =
                settings.clientCacheControl
                ? fields.cacheControl.map(FreshnessDemand.init(cacheControl:)) ?? .none : .none
            var negotiation = ContentNegotiation.identity
            if fields.acceptEncoding != nil || fields.ifNoneMatch != nil || fields.ifModifiedSince != nil {
                negotiation = ContentNegotiation(
                    acceptEncoding: fields.acceptEncoding,
                    ifNoneMatch: fields.ifNoneMatch,
                    ifModifiedSince: fields.ifModifiedSince,
                    now: Self.wallClock.secondsSince1970()
                )
            }
            switch service.answer(
                toQuery: query,
                on: eventLoop,
                correlation: correlation,
                spender: spender,
                freshness: freshness,
                negotiation: negotiation
            ) {
            case .ready(var response):
                if let spender, let perMinute = spender.perMinute {
                    response.rateLimit = budget(of: spender.team, perMinute: perMinute, at: started)
                }
                response.variesByEncoding = service.compression
                return .now(response, isHead: isHead, closes: false)
            case .pending(let future):
                let varies = service.compression
                let answer = future.map { response in
                    var response = response
                    response.variesByEncoding = varies
                    return response
                }
                return .later(withBudget(answer, spender: spender), isHead: isHead)
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
            return .now(response, isHead: false, closes: error.closesConnection)
        }
    }

    /// Answers a request refused before it reached a route, and starts its record in `recorder`: it gets an
    /// access log line and counts in `xi_gateway_refused_requests_total`, with its method when it was read,
    /// never its target or anything else it sent.
    mutating func refuse(
        _ error: GatewayError,
        reason: RefusalReason,
        method: HTTPMethod?,
        started: NIODeadline,
        recorder: inout RequestRecorder
    ) -> GatewayResponse {
        requestCount += 1
        recorder.beginRefusal(
            reason,
            method: method?.rawValue,
            requestID: Self.requestID(prefix: idPrefix, sequence: requestCount),
            started: started,
            logged: settings.settings.accessLog
        )
        return error.response()
    }

    /// The settings in force, read again when a reload changed them.
    private mutating func refreshedSettings() -> ServerContext.Settings {
        if context.settingsVersion != settings.version { settings = context.versionedSettings }
        return settings.settings
    }

    /// The team a request comes from when `CLIENTS_FILE` is set: `.success(nil)` while the gateway is
    /// open, `.failure` for a missing or unknown token. The token is looked up by its digest, so the time
    /// taken does not depend on how much of it is right.
    private func team(
        for fields: RequestFields,
        settings: ServerContext.Settings
    ) -> Result<ListService.Spender?, GatewayError> {
        guard let teams = settings.teams else { return .success(nil) }
        var token = fields.apiKey
        if token == nil, let authorization = fields.authorization,
            authorization.hasPrefix("Bearer ")
        {
            token = String(authorization.dropFirst("Bearer ".count))
        }
        guard let token, let team = teams.team(forToken: token, now: Self.wallClock.secondsSince1970()) else {
            return .failure(.invalidAPIKey)
        }
        return .success(
            ListService.Spender(team: team.name, perMinute: team.upstreamPerMinute ?? settings.defaultUpstreamPerMinute)
        )
    }

    /// `team`'s budget for the `RateLimit` fields of an answer ready now: read from the ledger at most once
    /// a second per connection, and again whenever a spend anywhere moved its version (a lock every event
    /// loop takes would otherwise be on every hit of a team with a budget).
    private mutating func budget(of team: String, perMinute: Int, at now: NIODeadline) -> BudgetState {
        let version = ledger.version
        let second = now.uptimeNanoseconds / 1_000_000_000
        if let memo = budgetMemo, memo.version == version, memo.second == second, memo.team == team,
            memo.state.perMinute == perMinute
        {
            return memo.state
        }
        let state = ledger.state(team: team, perMinute: perMinute)
        budgetMemo = (team, version, second, state)
        return state
    }

    /// `future`'s answer with its team's budget, read when it is ready (after the spend it may have made).
    private func withBudget(
        _ future: EventLoopFuture<GatewayResponse>,
        spender: ListService.Spender?
    ) -> EventLoopFuture<GatewayResponse> {
        guard let spender, let perMinute = spender.perMinute else { return future }
        let ledger = self.ledger
        return future.map { response in
            var response = response
            response.rateLimit = ledger.state(team: spender.team, perMinute: perMinute)
            return response
        }
    }

    /// What ties an API request to the upstream request it may cause: its id, and its W3C trace context
    /// (the client's `traceparent`, when valid, with its `tracestate`; else a new trace), with a new span for
    /// the gateway.
    private mutating func correlation(for fields: RequestFields, requestID: String) -> Correlation {
        let span = TraceContext.newSpanID(using: &traceIDs)
        if let given = fields.traceparent, let trace = TraceContext(traceparent: given, spanID: span) {
            let state = fields.tracestate.flatMap { Correlation.isPassableTracestate($0) ? $0 : nil }
            return Correlation(requestID: requestID, trace: trace, tracestate: state)
        }
        return Correlation(requestID: requestID, trace: .new(using: &traceIDs))
    }

    /// The client's `X-Request-Id` when it is sane (1 to 128 of `A-Z a-z 0-9 . _ : -`), else a new one.
    private mutating func requestID(for fields: RequestFields) -> String {
        if let given = fields.requestID, (1...128).contains(given.utf8.count),
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
}
