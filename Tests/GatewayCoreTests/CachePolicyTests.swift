import Testing

@testable import GatewayCore

@Suite("CachePolicy: one row per upstream outcome")
struct CachePolicyTests {
    typealias Row = (
        outcome: CachePolicy.Outcome, ttl: Int, held: Bool, cache: CachePolicy.CacheAction, answer: CachePolicy.Answer
    )

    static let json = CachePolicy.Outcome.answered(status: 200, bodyIsJSON: true, fits: true)

    static let rows: [Row] = [
        // A 200 with JSON is stored, unless pages live no time or it is too large; then it is answered and
        // the page held (an older copy) goes, as a store of the new one would have replaced it.
        (json, 30, false, .store, .page(.stored)),
        (json, 30, true, .store, .page(.stored)),
        (json, 0, false, .drop, .page(.ttlZero)),
        (json, 0, true, .drop, .page(.ttlZero)),
        (.answered(status: 200, bodyIsJSON: true, fits: false), 30, true, .drop, .page(.tooLarge)),
        (.answered(status: 200, bodyIsJSON: true, fits: false), 30, false, .drop, .page(.tooLarge)),
        // A 200 that is not JSON is a bad answer: the page held stands in.
        (.answered(status: 200, bodyIsJSON: false, fits: true), 30, true, .keepStale, .fail),
        (.answered(status: 200, bodyIsJSON: false, fits: true), 30, false, .leave, .fail),
        // The upstream says the page is wrong now.
        (.answered(status: 401, bodyIsJSON: true, fits: true), 30, true, .drop, .passOn),
        (.answered(status: 403, bodyIsJSON: true, fits: true), 30, true, .drop, .passOn),
        (.answered(status: 404, bodyIsJSON: true, fits: true), 30, true, .drop, .passOn),
        (.answered(status: 422, bodyIsJSON: true, fits: true), 30, true, .drop, .passOn),
        (.answered(status: 422, bodyIsJSON: true, fits: true), 30, false, .drop, .passOn),
        // Says nothing about the page: it stands in.
        (.answered(status: 429, bodyIsJSON: true, fits: true), 30, true, .keepStale, .passOn),
        (.answered(status: 429, bodyIsJSON: true, fits: true), 30, false, .leave, .passOn),
        (.answered(status: 500, bodyIsJSON: false, fits: true), 30, true, .keepStale, .passOn),
        (.answered(status: 503, bodyIsJSON: true, fits: true), 30, true, .keepStale, .passOn),
        (.answered(status: 599, bodyIsJSON: true, fits: true), 30, false, .leave, .passOn),
        // Anything else is passed on and changes nothing.
        (.answered(status: 201, bodyIsJSON: true, fits: true), 30, true, .leave, .passOn),
        (.answered(status: 204, bodyIsJSON: false, fits: true), 30, true, .leave, .passOn),
        (.answered(status: 301, bodyIsJSON: false, fits: true), 30, true, .leave, .passOn),
        (.answered(status: 400, bodyIsJSON: true, fits: true), 30, true, .leave, .passOn),
        (.answered(status: 409, bodyIsJSON: true, fits: true), 30, true, .leave, .passOn),
        (.answered(status: 600, bodyIsJSON: true, fits: true), 30, true, .leave, .passOn),
        // No answer at all: the page held stands in.
        (.failed, 30, true, .keepStale, .fail),
        (.failed, 30, false, .leave, .fail),
        (.failed, 0, true, .keepStale, .fail),
    ]

    @Test(arguments: rows.indices)
    func row(_ index: Int) {
        let row = Self.rows[index]
        let decision = CachePolicy.decide(row.outcome, ttlSeconds: row.ttl, holdsPage: row.held)
        #expect(decision == CachePolicy.Decision(cache: row.cache, answer: row.answer), "row \(index): \(row)")
    }

    /// Every status from 100 to 599 gets a decision that passes it on or answers with it; only a 200 is ever
    /// stored.
    @Test func onlyA200IsEverStored() {
        for status in 100...599 {
            let decision = CachePolicy.decide(
                .answered(status: status, bodyIsJSON: true, fits: true),
                ttlSeconds: 30,
                holdsPage: true
            )
            #expect((decision.cache == .store) == (status == 200), "status \(status)")
        }
    }
}
