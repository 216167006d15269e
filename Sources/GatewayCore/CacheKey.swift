/// The identity of an upstream credential: its SHA-256, never the credential itself. Compared and hashed
/// as four machine words, which costs a lookup far less than a 64-character string would.
public struct CredentialID: Sendable, Hashable {
    private let words: (UInt64, UInt64, UInt64, UInt64)

    /// The identity of `secret`.
    public init(_ secret: Secret) { self.init(hashing: secret.revealed) }

    /// The identity of any string (a team token, or a test's stand-in).
    public init(hashing text: String) {
        let digest = SHA256.hash(text.utf8)
        func word(_ offset: Int) -> UInt64 {
            digest[offset..<(offset + 8)].reduce(0) { $0 << 8 | UInt64($1) }
        }
        self.words = (word(0), word(8), word(16), word(24))
    }

    public static func == (lhs: CredentialID, rhs: CredentialID) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
            && lhs.words.3 == rhs.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}

/// What a cached page answers: whose question (the credential's identity) and which question (the
/// canonical query). Pages for different upstream keys never mix, because each page's `access_info`
/// describes the caller.
public struct CacheKey: Sendable, Hashable, CustomStringConvertible {
    /// Whose question.
    public let credential: CredentialID
    /// ``ListQuery/canonicalQuery``.
    public let query: String
    /// The query's `agent_id` filter, decoded (`nil`: the page lists every agent's invocations): what
    /// invalidation asks of a key (``concerns(agent:)``), never read back out of `query`'s text.
    public let agentID: String?
    /// The hash of both, computed once: a key is hashed on every lookup, to choose the cache's shard and
    /// again in the shard's table, and the keys of repeated queries are remembered, so most lookups hash
    /// one word instead of the whole query.
    public let digest: Int

    /// Creates a key for a canonical query and its agent filter.
    public init(credential: CredentialID, query: String, agentID: String?) {
        self.credential = credential
        self.query = query
        self.agentID = agentID
        var hasher = Hasher()
        hasher.combine(credential)
        hasher.combine(query)
        digest = hasher.finalize()
    }

    public static func == (lhs: CacheKey, rhs: CacheKey) -> Bool {
        lhs.digest == rhs.digest && lhs.credential == rhs.credential && lhs.query == rhs.query
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(digest) }

    /// Creates the key of `query` asked with the credential whose identity is `credential`.
    public init(credential: CredentialID, query: ListQuery) {
        self.init(credential: credential, query: query.canonicalQuery, agentID: query["agent_id"])
    }

    /// A key for the credential named by `credential` (hashed) and a query's text, for tests and tools:
    /// the agent filter is read by parsing the text (none when it is not a valid list query).
    public init(credential: String, query: String) {
        let agentID = (try? ListQuery.parse(Substring(query)))?["agent_id"]
        self.init(credential: CredentialID(hashing: credential), query: query, agentID: agentID)
    }

    /// The key of `query` for the credential named by `credential` (hashed), for tests and tools.
    public init(credential: String, query: ListQuery) {
        self.init(credential: CredentialID(hashing: credential), query: query)
    }

    /// The bytes this key holds, for the cache's memory accounting.
    public var byteCount: Int { 32 + query.utf8.count + (agentID?.utf8.count ?? 0) }

    public var description: String { query }
}

extension CacheKey {
    /// Whether the page under this key can list invocations of `agent`: the pages filtered on that agent,
    /// and the pages with no agent filter. What to drop when that agent's invocations change. Agents are
    /// compared by their bytes, as the upstream compares them (Swift's `==` would equate canonically
    /// equivalent texts).
    public func concerns(agent: String) -> Bool {
        guard let agentID else { return true }
        return agentID.utf8.elementsEqual(agent.utf8)
    }
}
