import NIOCore

/// A page another replica stored in the shared tier: its bytes, its type, and its age by the shared
/// tier's clock (so `Age` and freshness are the same on every replica).
public struct SharedPage: Sendable, Hashable {
    public var body: ByteBuffer
    public var contentType: String
    public var ageMilliseconds: Int

    public init(body: ByteBuffer, contentType: String, ageMilliseconds: Int) {
        self.body = body
        self.contentType = contentType
        self.ageMilliseconds = ageMilliseconds
    }
}

/// An upstream request this replica leads for every replica: the question and what the shared tier needs
/// to end it (its lock's token and the invalidation generations it began under).
public struct SharedFlight: Sendable, Hashable {
    public let key: CacheKey
    public let token: String
    public let generations: [String]

    public init(key: CacheKey, token: String, generations: [String]) {
        self.key = key
        self.token = token
        self.generations = generations
    }
}

/// What a replica that missed its own cache does next, as the shared tier says.
public enum SharedEntry: Sendable, Hashable {
    /// Another replica stored a fresh page.
    case page(SharedPage)
    /// This replica leads: it asks the upstream, then ends the flight with ``SharedTier/finish(_:status:body:contentType:lifeMilliseconds:on:)``.
    case lead(SharedFlight)
    /// Another replica leads, for at most this much longer; wait with ``SharedTier/outcome(of:within:on:)``.
    case follow(lockLeft: TimeAmount)
    /// The shared tier cannot be used now (Redis is down, slow or failing): work alone.
    case alone
}

/// What another replica's flight came to.
public enum SharedOutcome: Sendable, Hashable {
    /// A 200, stored.
    case page(SharedPage)
    /// Any other answer, as the leader got it.
    case answer(status: Int, contentType: String, body: ByteBuffer)
}

/// The shared tier as the request path sees it: pages stored by any replica, one upstream request per
/// question across replicas, one budget per team, and invalidations that reach every replica. The
/// Redis-backed implementation is `RedisSharedTier` in `GatewayShared`; a fake for tests is in
/// `GatewayTesting`.
///
/// No method fails and none waits longer than its bound: when the shared tier cannot answer, each says
/// so (``SharedEntry/alone``, `nil`) and the caller works alone, so a client never gets an error because
/// Redis is down. Futures complete on the loop passed in.
public protocol SharedTier: AnyObject, Sendable {
    /// Whether the shared tier is in use now; while it is not, callers work alone and skip it.
    var isUp: Bool { get }

    /// Finds a fresh page (younger than `freshMilliseconds`), or makes this replica the leader of `key`'s
    /// upstream request, or says another replica leads it, in one step.
    func enter(_ key: CacheKey, freshMilliseconds: Int, on eventLoop: any EventLoop) -> EventLoopFuture<SharedEntry>

    /// Waits until the replica leading `key` has finished, woken by its message (with a slow poll in case
    /// a message is lost), for at most `limit`; `nil` when nothing came (the caller then asks the upstream
    /// itself).
    func outcome(
        of key: CacheKey,
        within limit: TimeAmount,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<SharedOutcome?>

    /// Ends a flight this replica led: a 200 is stored for `lifeMilliseconds` (0: not stored) unless an
    /// invalidation came since the flight began; any other answer reaches the other replicas' waiters.
    func finish(
        _ flight: SharedFlight,
        status: Int,
        body: ByteBuffer,
        contentType: String,
        lifeMilliseconds: Int,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Void>

    /// Gives up a flight without an answer (its leader was refused before asking the upstream): the other
    /// replicas' waiters try again at once.
    func abandon(_ flight: SharedFlight, on eventLoop: any EventLoop) -> EventLoopFuture<Void>

    /// Spends one upstream request from `team`'s shared budget of `perMinute`, and says what the bucket holds
    /// then; `nil` when the shared tier cannot say (the caller's own ledger decides).
    func spend(team: String, perMinute: Int, on eventLoop: any EventLoop) -> EventLoopFuture<SharedBudget?>

    /// Ends the pages a change to `agent`'s invocations makes wrong (every page for `nil`) on every other
    /// replica, in both tiers (this replica's own first tier is the caller's to clear). The future
    /// succeeds once Redis has it, or fails when it could not be told.
    func invalidate(agent: String?) -> EventLoopFuture<Void>
}
