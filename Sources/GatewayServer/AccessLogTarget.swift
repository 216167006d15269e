import GatewayCore

/// The request target as the access log writes it, without what a client may have put in it by mistake:
/// a token in the query (`?xi-api-key=...`, `?token=...`) must not reach the log.
///
/// On the list route, values of parameters the schema names are kept (they are the question asked) and
/// every other value (and a name with no value) is written as `***`; other routes are logged by their
/// path alone.
enum AccessLogTarget {
    static func logged(_ target: String, route: GatewayMetrics.RouteLabel) -> String {
        guard let question = target.firstIndex(of: "?") else { return target }
        guard route == .list else { return String(target[..<question]) }
        let query = target[target.index(after: question)...]
        // The common case, checked without building anything: every name is the schema's.
        if allNamesInSchema(query) { return target }
        let masked = query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> Substring in
            let name = name(of: pair)
            if pair.isEmpty || isSchemaName(name) { return pair }
            // A name alone may be the secret itself (`?sk_...`).
            return name.endIndex == pair.endIndex ? "***" : name + "=***"
        }
        return String(target[...question]) + masked.joined(separator: "&")
    }

    /// Whether every pair of `query` is empty or named by the schema; allocates nothing (a logged hit
    /// passes through here).
    private static func allNamesInSchema(_ query: Substring) -> Bool {
        var rest = query
        while true {
            let end = rest.firstIndex(of: "&") ?? rest.endIndex
            let pair = rest[..<end]
            if !pair.isEmpty, !isSchemaName(name(of: pair)) { return false }
            guard end < rest.endIndex else { return true }
            rest = rest[rest.index(after: end)...]
        }
    }

    private static func name(of pair: Substring) -> Substring {
        pair[..<(pair.firstIndex(of: "=") ?? pair.endIndex)]
    }

    /// Whether `name`, as sent, is one of the schema's parameter names.
    private static func isSchemaName(_ name: Substring) -> Bool {
        ListQuerySchema.parameters.contains { $0.name.utf8.elementsEqual(name.utf8) }
    }
}
