/// One query parameter the upstream list endpoint accepts.
public struct QueryParameter: Sendable, Hashable {
    /// How the upstream reads a parameter's value.
    public enum Kind: Sendable, Hashable {
        /// Any string, taken as it is once form-decoded.
        case string
        /// An integer read the way pydantic v2 reads one in lax mode, within optional bounds.
        case integer(minimum: Int?, maximum: Int?)
    }

    /// The exact, case-sensitive name.
    public let name: String
    /// How its value is read.
    public let kind: Kind
    /// The canonical value the upstream assumes when the parameter is absent; `nil` means "absent".
    public let defaultValue: String?

    /// Creates a parameter description.
    public init(_ name: String, _ kind: Kind, default defaultValue: String? = nil) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
    }
}

/// The query schema of `GET /v1/convai/test-invocations`, in the upstream's declaration order.
///
/// This table is the single source of truth: parsing, validation, error order, the cache key and the
/// query sent upstream all follow it, so a new parameter is one line here.
public enum ListQuerySchema {
    /// Every parameter, in the order the upstream declares (and reports errors for) them.
    public static let parameters: [QueryParameter] = [
        QueryParameter("agent_id", .string),
        QueryParameter("page_size", .integer(minimum: 1, maximum: 100), default: "30"),
        QueryParameter("cursor", .string),
        QueryParameter("branch_id", .string),
        QueryParameter("created_by_user_id", .string),
        QueryParameter("test_id", .string),
        QueryParameter("version_id", .string),
        QueryParameter("search", .string),
        QueryParameter("start_time", .integer(minimum: nil, maximum: nil)),
        QueryParameter("end_time", .integer(minimum: nil, maximum: nil)),
    ]

    /// The index of a parameter in ``parameters`` by exact name.
    static func index(of name: String) -> Int? {
        parameters.firstIndex { $0.name == name }
    }
}
