import Synchronization

/// Whether a team may cause an upstream request now.
public enum BudgetDecision: Equatable, Sendable {
    case allowed
    /// Over budget; a token comes back in this many seconds (rounded up).
    case denied(retryAfterSeconds: Int)
}

/// A shared bucket's answer to a spend: the decision, and the tokens it left (for this replica's view of
/// the team's budget).
public struct SharedBudget: Sendable, Equatable {
    public var decision: BudgetDecision
    /// What the bucket holds after the spend (fractions of a token included).
    public var tokensLeft: Double

    public init(decision: BudgetDecision, tokensLeft: Double) {
        self.decision = decision
        self.tokensLeft = tokensLeft
    }
}

/// A team's budget as a client is told of it (the `RateLimit` header fields).
public struct BudgetState: Sendable, Hashable {
    /// Upstream requests per minute.
    public var perMinute: Int
    /// Whole upstream requests left now.
    public var remaining: Int
    /// Seconds until one more request is in the bucket (0 when it is full).
    public var secondsToNext: Int

    public init(perMinute: Int, remaining: Int, secondsToNext: Int) {
        self.perMinute = perMinute
        self.remaining = remaining
        self.secondsToNext = secondsToNext
    }
}

/// What a team spent and was refused since start (on this replica).
public struct BudgetCounts: Sendable, Hashable {
    public var spent = 0
    public var refused = 0

    public init(spent: Int = 0, refused: Int = 0) {
        self.spent = spent
        self.refused = refused
    }
}

/// Where a team's upstream budget is spent: the seam a shared tier implements so that every replica spends
/// from one bucket per team (``TeamBudgets`` is the in-process one). Synchronous: it is asked inside the
/// flight table's lock, so a shared ledger answers from what it holds locally (for instance tokens taken
/// from the shared bucket ahead of need) and settles with the others in the background.
public protocol BudgetLedger: Sendable {
    /// Spends one upstream request for `team` at `perMinute` (`nil`: unlimited) if it has one left.
    func spend(team: String, perMinute: Int?) -> BudgetDecision
    /// A spend the shared bucket decided: counted here, and this ledger's bucket for `team` takes the
    /// shared one's level, so that what clients are told (and what decides while the shared tier is down)
    /// follows the shared budget.
    func settle(team: String, perMinute: Int, shared: SharedBudget)
    /// `team`'s budget now, spending nothing.
    func state(team: String, perMinute: Int) -> BudgetState
    /// Moves whenever a bucket changes by a spend or a settle: a reader that kept a ``state(team:perMinute:)``
    /// may keep it while this has not moved (and its second has not passed).
    var version: Int { get }
    /// Each team's spends and refusals since start.
    var counts: [String: BudgetCounts] { get }
}

/// What each team may spend of the upstream: a token bucket per team, refilled continuously at its
/// rate per minute, holding at most a minute's worth. Cache hits cost nothing; only upstream requests that
/// a team's requests cause are spent here.
public final class TeamBudgets: BudgetLedger {
    /// Whether a team may cause an upstream request now.
    public typealias Decision = BudgetDecision

    private struct Bucket {
        var tokens: Double
        var updatedAt: UInt64
        var perMinute: Int
    }

    private let buckets = Locked<[String: Bucket]>([:])
    private let tallies = Locked<[String: BudgetCounts]>([:])
    private let changes = Atomic<Int>(0)
    private let clock: any CacheClock

    /// Creates empty budgets; each team's bucket starts full.
    public init(clock: any CacheClock = SystemCacheClock()) {
        self.clock = clock
    }

    /// Spends one upstream request for `team` at `perMinute` (`nil`: unlimited) if it has one left.
    public func spend(team: String, perMinute: Int?) -> Decision {
        guard let perMinute else {
            count(team, .allowed)
            return .allowed
        }
        guard perMinute > 0 else {
            count(team, .denied(retryAfterSeconds: 60))
            return .denied(retryAfterSeconds: 60)
        }
        let now = clock.nowNanoseconds()
        let decision = buckets.withLock { buckets in
            var bucket = Self.refilled(buckets[team], perMinute: perMinute, now: now)
            defer { buckets[team] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return Decision.allowed
            }
            return .denied(retryAfterSeconds: max(1, Self.secondsToNext(bucket)))
        }
        count(team, decision)
        changes.add(1, ordering: .releasing)
        return decision
    }

    public func settle(team: String, perMinute: Int, shared: SharedBudget) {
        let now = clock.nowNanoseconds()
        buckets.withLock { buckets in
            buckets[team] = Bucket(
                tokens: min(Double(perMinute), max(0, shared.tokensLeft)),
                updatedAt: now,
                perMinute: perMinute
            )
        }
        count(team, shared.decision)
        changes.add(1, ordering: .releasing)
    }

    public func state(team: String, perMinute: Int) -> BudgetState {
        guard perMinute > 0 else { return BudgetState(perMinute: 0, remaining: 0, secondsToNext: 60) }
        let now = clock.nowNanoseconds()
        let bucket = buckets.withLock { Self.refilled($0[team], perMinute: perMinute, now: now) }
        let full = bucket.tokens >= Double(perMinute)
        return BudgetState(
            perMinute: perMinute,
            remaining: Int(min(bucket.tokens + 1e-9, Double(perMinute))),
            secondsToNext: full ? 0 : Self.secondsToNext(bucket)
        )
    }

    public var version: Int { changes.load(ordering: .acquiring) }

    public var counts: [String: BudgetCounts] { tallies.withLock { $0 } }

    private func count(_ team: String, _ decision: Decision) {
        tallies.withLock { tallies in
            if decision == .allowed {
                tallies[team, default: BudgetCounts()].spent += 1
            } else {
                tallies[team, default: BudgetCounts()].refused += 1
            }
        }
    }

    /// `bucket` (a full one when there is none yet) refilled up to `now`, at `perMinute`.
    private static func refilled(_ bucket: Bucket?, perMinute: Int, now: UInt64) -> Bucket {
        var bucket = bucket ?? Bucket(tokens: Double(perMinute), updatedAt: now, perMinute: perMinute)
        if bucket.perMinute != perMinute {
            // A reload changed the rate: keep what is left, within the new bound.
            bucket.perMinute = perMinute
            bucket.tokens = min(bucket.tokens, Double(perMinute))
        }
        let elapsed = Double(now &- bucket.updatedAt) / 1_000_000_000
        bucket.tokens = min(Double(perMinute), bucket.tokens + elapsed * Double(perMinute) / 60)
        bucket.updatedAt = now
        return bucket
    }

    /// Whole seconds until `bucket` holds one more token.
    private static func secondsToNext(_ bucket: Bucket) -> Int {
        let fraction = bucket.tokens - bucket.tokens.rounded(.down)
        let seconds = (1 - fraction) * 60 / Double(bucket.perMinute)
        // Less a hair, so that 20.000000001 (floating point) says 20.
        return Int((seconds - 1e-6).rounded(.up))
    }
}
