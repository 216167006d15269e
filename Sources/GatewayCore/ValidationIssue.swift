/// One entry of a FastAPI validation error (`{"type","loc","msg","input","ctx"?}`), with pydantic's texts.
public struct ValidationIssue: Sendable, Hashable {
    /// pydantic's error type, e.g. `int_parsing`.
    public var type: String
    /// Where the error is, e.g. `["query", "page_size"]`.
    public var location: [String]
    /// pydantic's human-readable message.
    public var message: String
    /// The value as received (form-decoded).
    public var input: String
    /// pydantic's context, e.g. `[("ge", 1)]`; empty when pydantic gives none.
    public var context: [Context]

    /// One `ctx` member; pydantic's bounds here are always integers.
    public struct Context: Sendable, Hashable {
        public var name: String
        public var value: Int
    }

    /// The JSON object, keys in FastAPI's order.
    public var json: String {
        var text = "{\"type\":" + JSONText.quoted(type)
        text += ",\"loc\":[" + location.map(JSONText.quoted).joined(separator: ",") + "]"
        text += ",\"msg\":" + JSONText.quoted(message)
        text += ",\"input\":" + JSONText.quoted(input)
        if !context.isEmpty {
            text +=
                ",\"ctx\":{"
                + context.map { JSONText.quoted($0.name) + ":" + String($0.value) }
                .joined(separator: ",") + "}"
        }
        return text + "}"
    }

    /// A whole 422 body: `{"detail":[...]}`.
    public static func body(for issues: [ValidationIssue]) -> String {
        "{\"detail\":[" + issues.map(\.json).joined(separator: ",") + "]}"
    }
}

extension ValidationIssue {
    static func intParsing(_ name: String, _ input: String) -> ValidationIssue {
        ValidationIssue(
            type: "int_parsing",
            location: ["query", name],
            message: "Input should be a valid integer, unable to parse string as an integer",
            input: input,
            context: []
        )
    }

    static func intParsingSize(_ name: String, _ input: String) -> ValidationIssue {
        ValidationIssue(
            type: "int_parsing_size",
            location: ["query", name],
            message: "Unable to parse input string as an integer, exceeded maximum size",
            input: input,
            context: []
        )
    }

    static func greaterThanEqual(_ name: String, _ input: String, _ bound: Int) -> ValidationIssue {
        ValidationIssue(
            type: "greater_than_equal",
            location: ["query", name],
            message: "Input should be greater than or equal to \(bound)",
            input: input,
            context: [Context(name: "ge", value: bound)]
        )
    }

    static func lessThanEqual(_ name: String, _ input: String, _ bound: Int) -> ValidationIssue {
        ValidationIssue(
            type: "less_than_equal",
            location: ["query", name],
            message: "Input should be less than or equal to \(bound)",
            input: input,
            context: [Context(name: "le", value: bound)]
        )
    }

    static func extraForbidden(_ name: String, _ input: String) -> ValidationIssue {
        ValidationIssue(
            type: "extra_forbidden",
            location: ["query", name],
            message: "Extra inputs are not permitted",
            input: input,
            context: []
        )
    }
}
