import GatewayCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Which routes a listener serves.
public enum ListenerRole: Sendable, Equatable {
    /// The API listener beside an admin listener: the API routes, `/healthz` and `/readyz`; `/metrics` and
    /// `/admin/...` are 404, so whoever can reach the API cannot read the gateway's figures.
    case api
    /// The admin listener (`ADMIN_LISTEN`): `/metrics`, the admin API (statistics without a token, purges
    /// with `ADMIN_TOKEN`), `/healthz` and `/readyz`; the API routes are 404.
    case admin
    /// The one listener when there is no admin listener (`ADMIN_LISTEN=off`): every route, and the whole
    /// admin API behind `ADMIN_TOKEN`.
    case combined
}

/// Where a request goes, decided from its method, its target and the listener's role.
enum Route: Equatable {
    /// `GET` or `HEAD` on the list path, with the query after `?` (empty when there is none).
    case list(query: Substring, isHead: Bool)
    /// `GET /healthz`: the process serves.
    case health(isHead: Bool)
    /// `GET /readyz`: the gateway takes traffic.
    case readiness(isHead: Bool)
    /// `GET /metrics`.
    case metrics
    /// `POST /admin/cache/purge`, with its query.
    case purge(query: Substring)
    /// `GET /admin/cache/stats`.
    case stats
    /// `GET /` on the admin listener: the status page.
    case statusPage(isHead: Bool)
    /// `GET /admin/status` on the admin listener: the status page's figures.
    case status
    /// A request forwarded upstream as it is (not cached).
    case passthrough(PassthroughRoute, isHead: Bool)
    /// A refusal the gateway answers itself.
    case refuse(Refusal)

    /// Whether the route serves teams only, when `CLIENTS_FILE` is set (the API routes).
    var needsTeam: Bool {
        switch self {
        case .list, .passthrough: return true
        default: return false
        }
    }

    enum Refusal: Equatable {
        case notFound
        /// With the methods the path allows, for `Allow`.
        case methodNotAllowed(allow: String)
        case notOriginForm
    }

    /// The list endpoint's path.
    static let listPath = "/v1/convai/test-invocations"

    /// The operations paths; `isAdmin`: served on the admin listener only (or when there is none).
    private static let paths: [(path: String, allow: String, isAdmin: Bool)] = [
        ("/healthz", "GET, HEAD", false), ("/readyz", "GET, HEAD", false), ("/metrics", "GET", true),
        ("/admin/cache/purge", "POST", true), ("/admin/cache/stats", "GET", true),
    ]

    /// The status page's paths, served on the admin listener only.
    private static let statusPaths = ["/", "/admin/status"]

    /// Routes `method` and `uri` (the request target as received) on a listener of `role`: a route the
    /// listener does not serve is 404, whatever the method.
    init(method: HTTPMethod, uri: String, role: ListenerRole = .combined) {
        let bytes = uri.utf8
        // Only origin-form is served: an absolute-form target ("http://other/...") must never choose the
        // host the gateway talks to.
        guard bytes.first == UInt8(ascii: "/") else {
            self = .refuse(.notOriginForm)
            return
        }
        // Byte-wise: Character comparison would cost more than the rest of routing.
        let questionMark = Self.firstQuestionMark(in: bytes)
        let path = bytes[..<(questionMark ?? bytes.endIndex)]
        let query = questionMark.map { uri[bytes.index(after: $0)...] } ?? uri[uri.endIndex...]
        let isHead = method == .HEAD
        let isGet = method == .GET || isHead
        let servesAPI = role != .admin
        if servesAPI, Self.bytes(path, equal: Self.listPath) {
            self = isGet ? .list(query: query, isHead: isHead) : .refuse(.methodNotAllowed(allow: "GET, HEAD"))
            return
        }
        if servesAPI, let passthrough = PassthroughRoute(path: uri[..<(questionMark ?? bytes.endIndex)]) {
            if passthrough.method == .GET ? isGet : method == passthrough.method {
                self = .passthrough(passthrough, isHead: isHead)
            } else {
                self = .refuse(.methodNotAllowed(allow: passthrough.method == .GET ? "GET, HEAD" : "POST"))
            }
            return
        }
        let servesAdmin = role != .api
        // The status page and its figures are read without a token: on the admin listener only, never on a
        // listener that teams reach.
        if role == .admin, let page = Self.statusPaths.first(where: { Self.bytes(path, equal: $0) }) {
            switch (page, method) {
            case ("/", .GET), ("/", .HEAD): self = .statusPage(isHead: isHead)
            case ("/admin/status", .GET): self = .status
            default: self = .refuse(.methodNotAllowed(allow: page == "/" ? "GET, HEAD" : "GET"))
            }
            return
        }
        guard let known = Self.paths.first(where: { (servesAdmin || !$0.isAdmin) && Self.bytes(path, equal: $0.path) })
        else {
            self = .refuse(.notFound)
            return
        }
        switch (known.path, method) {
        case ("/healthz", .GET), ("/healthz", .HEAD): self = .health(isHead: isHead)
        case ("/readyz", .GET), ("/readyz", .HEAD): self = .readiness(isHead: isHead)
        case ("/metrics", .GET): self = .metrics
        case ("/admin/cache/purge", .POST): self = .purge(query: query)
        case ("/admin/cache/stats", .GET): self = .stats
        default: self = .refuse(.methodNotAllowed(allow: known.allow))
        }
    }

    /// Where the first `?` of `bytes` is, found with `memchr` when the bytes are contiguous (as a received
    /// target always is).
    private static func firstQuestionMark(in bytes: String.UTF8View) -> String.UTF8View.Index? {
        let offset: Int?? = bytes.withContiguousStorageIfAvailable { buffer in
            guard let start = buffer.baseAddress,
                let found = memchr(start, Int32(UInt8(ascii: "?")), buffer.count)
            else { return nil }
            return UnsafeRawPointer(found) - UnsafeRawPointer(start)
        }
        guard let offset else { return bytes.firstIndex(of: UInt8(ascii: "?")) }
        return offset.map { bytes.index(bytes.startIndex, offsetBy: $0) }
    }

    /// Whether `bytes` are those of `text`, compared as memory (a generic element-wise comparison would
    /// cost more than the rest of routing).
    private static func bytes(_ bytes: Substring.UTF8View, equal text: String) -> Bool {
        guard bytes.count == text.utf8.count else { return false }
        let compared = bytes.withContiguousStorageIfAvailable { left in
            text.utf8.withContiguousStorageIfAvailable { right in
                left.isEmpty || memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0
            }
        }
        return (compared ?? nil) ?? bytes.elementsEqual(text.utf8)
    }

    /// The route's name in metrics.
    var metricLabel: GatewayMetrics.RouteLabel {
        switch self {
        case .list: return .list
        case .passthrough: return .passthrough
        case .health: return .healthz
        case .readiness: return .readyz
        case .metrics: return .metrics
        case .purge, .stats, .statusPage, .status: return .admin
        case .refuse: return .other
        }
    }
}

/// The upstream routes forwarded as they are: starting test runs, resubmitting one, reading one.
enum PassthroughRoute: Equatable {
    /// `POST /v1/convai/agents/{agent_id}/run-tests`.
    case runTests(agentSegment: Substring)
    /// `POST /v1/convai/test-invocations/{id}/resubmit`.
    case resubmit(idSegment: Substring)
    /// `GET /v1/convai/test-invocations/{id}`.
    case invocation(idSegment: Substring)

    /// Matches `path`; a segment must be plain (RFC 3986 unreserved characters only, not `.` or `..`): no
    /// escape, so nothing in it can change the path the upstream routes on once it decodes it.
    init?(path: Substring) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 5, parts[0].isEmpty, parts[1] == "v1", parts[2] == "convai" else { return nil }
        switch (parts[3], parts.count) {
        case ("agents", 6) where parts[5] == "run-tests" && Self.isPlain(parts[4]):
            self = .runTests(agentSegment: parts[4])
        case ("test-invocations", 6) where parts[5] == "resubmit" && Self.isPlain(parts[4]):
            self = .resubmit(idSegment: parts[4])
        case ("test-invocations", 5) where Self.isPlain(parts[4]):
            self = .invocation(idSegment: parts[4])
        default:
            return nil
        }
    }

    /// The method the upstream route takes (`GET` also serves `HEAD`).
    var method: HTTPMethod {
        switch self {
        case .runTests, .resubmit: return .POST
        case .invocation: return .GET
        }
    }

    /// The path to request upstream.
    var upstreamPath: String {
        switch self {
        case .runTests(let agent): return "/v1/convai/agents/\(agent)/run-tests"
        case .resubmit(let id): return "/v1/convai/test-invocations/\(id)/resubmit"
        case .invocation(let id): return "/v1/convai/test-invocations/\(id)"
        }
    }

    private static func isPlain(_ segment: Substring) -> Bool {
        guard !segment.isEmpty, segment != ".", segment != "..", segment.utf8.count <= 256 else { return false }
        return segment.utf8.allSatisfy(PercentEncoding.isUnreserved)
    }
}
