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
        let bytes = uri.utf8
        guard bytes.first == UInt8(ascii: "/") else {
            self = .refuse(.notOriginForm)
            return
        }
        // Byte-wise: Character comparison would cost more than the rest of routing.
        let questionMark = bytes.firstIndex(of: UInt8(ascii: "?"))
        guard bytes[..<(questionMark ?? bytes.endIndex)].elementsEqual(Self.listPath.utf8) else {
            self = .refuse(.notFound)
            return
        }
        switch method {
        case .GET, .HEAD:
            let query = questionMark.map { uri[bytes.index(after: $0)...] } ?? uri[uri.endIndex...]
            self = .list(query: query, isHead: method == .HEAD)
        default:
            self = .refuse(.methodNotAllowed)
        }
    }
}
