import Synchronization

/// Whether a team may cause an upstream request now.
public enum BudgetDecision: Equatable, Sendable {
    case allowed
    /// Over budget; a token comes back in this many seconds (rounded up).
    case denied(retryAfterSeconds: Int)
}

/// Where a team's upstream budget is spent: the seam a shared tier implements so that every replica spends
/// from one bucket per team (``TeamBudgets`` is the in-process one). Synchronous: it is asked inside the
/// flight table's lock, so a shared ledger answers from what it holds locally (for instance tokens taken
/// from the shared bucket ahead of need) and settles with the others in the background.
public protocol BudgetLedger: Sendable {
    /// Spends one upstream request for `team` at `perMinute` (`nil`: unlimited) if it has one left.
    func spend(team: String, perMinute: Int?) -> BudgetDecision
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
    private let clock: any CacheClock

    /// Creates empty budgets; each team's bucket starts full.
    public init(clock: any CacheClock = SystemCacheClock()) {
        self.clock = clock
    }

    /// Spends one upstream request for `team` at `perMinute` (`nil`: unlimited) if it has one left.
    public func spend(team: String, perMinute: Int?) -> Decision {
        guard let perMinute else { return .allowed }
        guard perMinute > 0 else { return .denied(retryAfterSeconds: 60) }
        let now = clock.nowNanoseconds()
        return buckets.withLock { buckets in
            var bucket = buckets[team] ?? Bucket(tokens: Double(perMinute), updatedAt: now, perMinute: perMinute)
            if bucket.perMinute != perMinute {
                // A reload changed the rate: keep what is left, within the new bound.
                bucket.perMinute = perMinute
                bucket.tokens = min(bucket.tokens, Double(perMinute))
            }
            let elapsed = Double(now &- bucket.updatedAt) / 1_000_000_000
            bucket.tokens = min(Double(perMinute), bucket.tokens + elapsed * Double(perMinute) / 60)
            bucket.updatedAt = now
            defer { buckets[team] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return .allowed
            }
            let secondsToNext = (1 - bucket.tokens) * 60 / Double(perMinute)
            // Less a hair, so that 20.000000001 (floating point) says 20.
            return .denied(retryAfterSeconds: max(1, Int((secondsToNext - 1e-6).rounded(.up))))
        }
    }
}
