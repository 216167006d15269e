/// What a cached page answers: whose question (the credential's identity) and which question (the
/// canonical query). Pages for different upstream keys never mix, because each page's `access_info`
/// describes the caller.
public struct CacheKey: Sendable, Hashable, CustomStringConvertible {
    /// An identity of the upstream credential, e.g. ``Secret/fingerprint``; never the credential.
    public var credential: String
    /// ``ListQuery/canonicalQuery``.
    public var query: String

    /// Creates a key.
    public init(credential: String, query: String) {
        self.credential = credential
        self.query = query
    }

    /// Creates the key of `query` asked with the credential whose identity is `credential`.
    public init(credential: String, query: ListQuery) {
        self.init(credential: credential, query: query.canonicalQuery)
    }

    /// The bytes this key holds, for the cache's memory accounting.
    var byteCount: Int { credential.utf8.count + query.utf8.count }

    public var description: String { query }
}
