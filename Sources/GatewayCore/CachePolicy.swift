/// What the cache does with what the upstream said: the one home of the rules in the README's "Cache
/// semantics" (which answers are stored, which drop the page held, which leave it to stand in, stale).
///
/// A pure table: ``decide(_:ttlSeconds:holdsPage:)`` takes the upstream's outcome and whether a page is
/// held for the question, and says what happens to the cache and what the client is answered. The list
/// service performs the decision; the tests hold each row.
public enum CachePolicy {
    /// What the upstream exchange came to.
    public enum Outcome: Sendable, Hashable {
        /// The upstream answered `status`; `bodyIsJSON` and `fits` (small enough for the cache) matter
        /// for a 200 only.
        case answered(status: Int, bodyIsJSON: Bool, fits: Bool)
        /// No answer: a timeout, a connection error, an unusable response, or the governor refused.
        case failed
    }

    /// What happens to the page held for the question.
    public enum CacheAction: Sendable, Hashable {
        /// The new page replaces it.
        case store
        /// It is dropped: the upstream says it is no longer right, or the new one is not kept.
        case drop
        /// It stays, and is served as `stale-if-error` while its stale window lasts.
        case keepStale
        /// Nothing changes.
        case leave
    }

    /// What the client is answered.
    public enum Answer: Sendable, Hashable {
        /// The new page, stored or not (``CacheStatus/Storage`` says which).
        case page(CacheStatus.Storage)
        /// The upstream's answer, as it came.
        case passOn
        /// An error of the gateway's own (502 for an unusable answer, or the failure's own status).
        case fail
    }

    /// One row of the table.
    public struct Decision: Sendable, Hashable {
        public var cache: CacheAction
        public var answer: Answer

        public init(cache: CacheAction, answer: Answer) {
            self.cache = cache
            self.answer = answer
        }
    }

    /// The decision for `outcome` when the cache keeps pages `ttlSeconds` and `holdsPage` says whether a
    /// page (stale, being refreshed) is held for the question.
    public static func decide(_ outcome: Outcome, ttlSeconds: Int, holdsPage: Bool) -> Decision {
        // What stands in for a failed refresh: the page held, if there is one.
        let standIn: CacheAction = holdsPage ? .keepStale : .leave
        switch outcome {
        case .answered(status: 200, let bodyIsJSON, let fits):
            guard bodyIsJSON else { return Decision(cache: standIn, answer: .fail) }
            guard ttlSeconds > 0 else { return Decision(cache: .drop, answer: .page(.ttlZero)) }
            guard fits else { return Decision(cache: .drop, answer: .page(.tooLarge)) }
            return Decision(cache: .store, answer: .page(.stored))
        case .answered(status: 401, _, _), .answered(status: 403, _, _), .answered(status: 404, _, _),
            .answered(status: 422, _, _):
            // The key, the agent or the question is no longer valid: so is the page.
            return Decision(cache: .drop, answer: .passOn)
        case .answered(status: 429, _, _), .answered(status: 500...599, _, _):
            // Says nothing about the page: it stands in for the answer while it may.
            return Decision(cache: standIn, answer: .passOn)
        case .answered:
            return Decision(cache: .leave, answer: .passOn)
        case .failed:
            return Decision(cache: standIn, answer: .fail)
        }
    }
}
