/// What the cache did for one answer, as the `Cache-Status` field (RFC 9211) says it: every answer on the
/// list path carries one, and every one is made here.
///
/// A fresh hit, by far the most frequent answer, is kept as its number and written without building a
/// string (``freshHitPrefix``); every other value is spelled by ``description``.
public enum CacheStatus: Sendable, Hashable, CustomStringConvertible {
    /// The cache's name, first in every value.
    public static let cacheName = "xi-gateway"

    /// What happened to a 200 with JSON that the upstream gave.
    public enum Storage: String, Sendable, Hashable, CaseIterable {
        /// Stored; later requests hit it.
        case stored
        /// Not stored: `CACHE_TTL_SECONDS` is 0.
        case ttlZero = "ttl-zero"
        /// Not stored: larger than the cache may hold.
        case tooLarge = "too-large"
    }

    /// Why the upstream was asked (RFC 9211's `fwd`).
    public enum Forward: String, Sendable, Hashable {
        /// No page for the question: `fwd=miss`.
        case miss
        /// A page was held, but the client's `Cache-Control` asked for a newer one: `fwd=request`.
        case request
    }

    /// A fresh page, with `ttl` seconds to live: `xi-gateway; hit; ttl=N`.
    case hit(ttl: Int)
    /// A page older than the client asked for (`Cache-Control: no-cache` or `max-age`), served because the
    /// team's upstream budget is spent: `xi-gateway; hit; ttl=N; detail=team-budget-spent` (a negative
    /// `ttl`: stale by that many seconds).
    case heldOverBudget(ttl: Int)
    /// A fresh page another replica stored in the shared tier, with `ttl` seconds to live:
    /// `xi-gateway; hit; ttl=N; detail=shared`.
    case sharedHit(ttl: Int)
    /// A page past its freshness, served while it is refreshed (`stale-while-revalidate`), or because the
    /// last refresh failed (`stale-if-error`): `xi-gateway; hit; ttl=-N; detail=...`.
    case stale(staleFor: Int, revalidationFailed: Bool)
    /// A stale page served to `Cache-Control: only-if-cached`, which starts no refresh:
    /// `xi-gateway; hit; ttl=-N; detail=only-if-cached`.
    case staleOnlyIfCached(staleFor: Int)
    /// The upstream was asked and gave a page: `xi-gateway; fwd=miss; fwd-status=200; stored`, or
    /// `detail=` why it was not stored. `collapsed`: this request shared another's upstream request.
    case fetched(Storage, collapsed: Bool, forward: Forward = .miss)
    /// The upstream was asked and its other answer is passed on: `xi-gateway; fwd=miss; fwd-status=N`.
    case passedOn(status: Int, collapsed: Bool, forward: Forward = .miss)
    /// The upstream was asked (or would have been) and gave nothing usable: `xi-gateway; fwd=miss;
    /// detail=...`, with a bounded label such as `upstream-timeout`.
    case failed(detail: String, collapsed: Bool, forward: Forward = .miss)
    /// Refused before the cache was used (a bad query, an unknown team, a spent budget):
    /// `xi-gateway; detail=...`.
    case refused(detail: String)

    /// What every fresh hit's field starts with; its TTL and the line's end follow. A literal, so that
    /// writing it on every hit costs no lazy global and no reference count (the tests hold it to
    /// ``cacheName``).
    @inlinable public static var freshHitPrefix: StaticString { "Cache-Status: xi-gateway; hit; ttl=" }

    /// The field's value.
    public var description: String {
        switch self {
        case .hit(let ttl):
            return "\(Self.cacheName); hit; ttl=\(ttl)"
        case .sharedHit(let ttl):
            return "\(Self.cacheName); hit; ttl=\(ttl); detail=shared"
        case .staleOnlyIfCached(let staleFor):
            return "\(Self.cacheName); hit; ttl=-\(staleFor); detail=only-if-cached"
        case .heldOverBudget(let ttl):
            return "\(Self.cacheName); hit; ttl=\(ttl); detail=team-budget-spent"
        case .stale(let staleFor, let revalidationFailed):
            let detail = revalidationFailed ? "stale-if-error" : "stale-while-revalidate"
            return "\(Self.cacheName); hit; ttl=-\(staleFor); detail=\(detail)"
        case .fetched(let storage, let collapsed, let forward):
            let stored = storage == .stored ? "stored" : "detail=\(storage.rawValue)"
            return "\(Self.cacheName); fwd=\(forward.rawValue); fwd-status=200; \(stored)\(Self.suffix(collapsed))"
        case .passedOn(let status, let collapsed, let forward):
            return "\(Self.cacheName); fwd=\(forward.rawValue); fwd-status=\(status)\(Self.suffix(collapsed))"
        case .failed(let detail, let collapsed, let forward):
            return "\(Self.cacheName); fwd=\(forward.rawValue); detail=\(detail)\(Self.suffix(collapsed))"
        case .refused(let detail):
            return "\(Self.cacheName); detail=\(detail)"
        }
    }

    private static func suffix(_ collapsed: Bool) -> String { collapsed ? "; collapsed" : "" }
}
