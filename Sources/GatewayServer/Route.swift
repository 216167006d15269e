import NIOHTTP1

/// Where a request goes, decided from its method and target alone.
enum Route: Equatable {
    /// `GET` or `HEAD` on the list path, with the query after `?` (empty when there is none).
    case list(query: Substring, isHead: Bool)
    /// A refusal the gateway answers itself.
    case refuse(Refusal)

    enum Refusal: Equatable {
        case notFound
        case methodNotAllowed
        case notOriginForm
    }

    /// The list endpoint's path.
    static let listPath = "/v1/convai/test-invocations"

    /// Routes `method` and `uri` (the request target as received).
    init(method: HTTPMethod, uri: String) {
        // Only origin-form is served: an absolute-form target ("http://other/...") must never choose the
        // host the gateway talks to.
        guard uri.utf8.first == UInt8(ascii: "/") else {
            self = .refuse(.notOriginForm)
            return
        }
        let questionMark = uri.firstIndex(of: "?")
        let path = uri[..<(questionMark ?? uri.endIndex)]
        guard path == Self.listPath else {
            self = .refuse(.notFound)
            return
        }
        switch method {
        case .GET, .HEAD:
            let query = questionMark.map { uri[uri.index(after: $0)...] } ?? uri[uri.endIndex...]
            self = .list(query: query, isHead: method == .HEAD)
        default:
            self = .refuse(.methodNotAllowed)
        }
    }
}
