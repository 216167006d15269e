import NIOHTTP1

/// Where a request goes, decided from its method and target alone.
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
    /// A refusal the gateway answers itself.
    case refuse(Refusal)

    enum Refusal: Equatable {
        case notFound
        /// With the methods the path allows, for `Allow`.
        case methodNotAllowed(allow: String)
        case notOriginForm
    }

    /// The list endpoint's path.
    static let listPath = "/v1/convai/test-invocations"

    private static let paths: [(path: String, allow: String)] = [
        (listPath, "GET, HEAD"), ("/healthz", "GET, HEAD"), ("/readyz", "GET, HEAD"), ("/metrics", "GET"),
        ("/admin/cache/purge", "POST"), ("/admin/cache/stats", "GET"),
    ]

    /// Routes `method` and `uri` (the request target as received).
    init(method: HTTPMethod, uri: String) {
        let bytes = uri.utf8
        // Only origin-form is served: an absolute-form target ("http://other/...") must never choose the
        // host the gateway talks to.
        guard bytes.first == UInt8(ascii: "/") else {
            self = .refuse(.notOriginForm)
            return
        }
        // Byte-wise: Character comparison would cost more than the rest of routing.
        let questionMark = bytes.firstIndex(of: UInt8(ascii: "?"))
        let path = bytes[..<(questionMark ?? bytes.endIndex)]
        let query = questionMark.map { uri[bytes.index(after: $0)...] } ?? uri[uri.endIndex...]
        let isHead = method == .HEAD
        let isGet = method == .GET || isHead
        if path.elementsEqual(Self.listPath.utf8) {
            self = isGet ? .list(query: query, isHead: isHead) : .refuse(.methodNotAllowed(allow: "GET, HEAD"))
            return
        }
        guard let known = Self.paths.first(where: { path.elementsEqual($0.path.utf8) }) else {
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

    /// The route's name in metrics (a bounded set).
    var metricLabel: String {
        switch self {
        case .list: return "list"
        case .health: return "healthz"
        case .readiness: return "readyz"
        case .metrics: return "metrics"
        case .purge, .stats: return "admin"
        case .refuse: return "other"
        }
    }
}
