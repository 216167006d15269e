import GatewayCore

/// The request target as the access log writes it, without what a client may have put in it by mistake:
/// a token in the query (`?xi-api-key=...`, `?token=...`) must not reach the log.
///
/// On the list route, values of parameters the schema names are kept (they are the question asked) and
/// every other value (and a name with no value) is written as `***`; other routes are logged by their
/// path alone. Bytes are compared as UTF-8 (a logged hit passes through here: no grapheme breaking, and
/// nothing built unless something is masked).
enum AccessLogTarget {
    static func logged(_ target: String, route: GatewayMetrics.RouteLabel) -> String {
        guard let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return target }
        guard route == .list else { return String(target[..<question]) }
        let query = target.utf8[target.utf8.index(after: question)...]
        if allNamesInSchema(query) { return target }
        let masked = query.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false).map {
            pair -> String in
            let name = name(of: pair)
            if pair.isEmpty || isSchemaName(name) { return String(Substring(pair)) }
            // A name alone may be the secret itself (`?sk_...`).
            return name.endIndex == pair.endIndex ? "***" : String(Substring(name)) + "=***"
        }
        return String(target[...question]) + masked.joined(separator: "&")
    }

    /// Whether every `&`-separated pair of `query` is empty or named by the schema; builds nothing.
    private static func allNamesInSchema(_ query: Substring.UTF8View) -> Bool {
        var start = query.startIndex
        while true {
            let end = query[start...].firstIndex(of: UInt8(ascii: "&")) ?? query.endIndex
            let pair = query[start..<end]
            if !pair.isEmpty, !isSchemaName(name(of: pair)) { return false }
            guard end < query.endIndex else { return true }
            start = query.index(after: end)
        }
    }

    private static func name(of pair: Substring.UTF8View) -> Substring.UTF8View {
        pair[..<(pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex)]
    }

    /// Whether `name`, as sent, is one of the schema's parameter names.
    private static func isSchemaName(_ name: Substring.UTF8View) -> Bool {
        ListQuerySchema.parameters.contains { $0.name.utf8.elementsEqual(name) }
    }
}
