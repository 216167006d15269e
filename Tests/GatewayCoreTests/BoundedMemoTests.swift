import GatewayCore
import GatewayTesting
import Testing

/// Pairs of strings Swift calls equal (canonically equivalent) whose bytes differ.
private let canonicallyEqualPairs: [(String, String)] = [
    ("agent_id=K", "agent_id=\u{212A}"),  // Kelvin sign
    ("agent_id=a;b", "agent_id=a\u{037E}b"),  // Greek question mark
    ("search=a`", "search=a\u{1FEF}"),  // Greek varia
    ("search=\u{E9}", "search=e\u{301}"),  // precomposed and combining acute
    ("search=\u{C5}", "search=\u{212B}"),  // Angstrom sign
]

@Suite("BoundedMemo")
struct BoundedMemoTests {
    @Test func remembersWhatItWasToldAndNothingElse() {
        let memo = BoundedMemo<String, Int>(capacity: 64)

        #expect(memo.value(for: "a") == nil)
        memo.remember(1, for: "a")
        memo.remember(2, for: "b")

        #expect(memo.value(for: "a") == 1)
        #expect(memo.value(for: "b") == 2)
        #expect(memo.value(for: "c") == nil)
        #expect(memo.count == 2)
    }

    @Test func rememberingAgainReplacesTheResult() {
        let memo = BoundedMemo<String, Int>(capacity: 4)

        memo.remember(1, for: "a")
        memo.remember(2, for: "b")
        memo.remember(3, for: "a")

        #expect(memo.value(for: "a") == 3)
        #expect(memo.value(for: "b") == 2)
        #expect(memo.count == 2)
    }

    /// A thread's table fills up to `capacity`, and the next new entry empties it first.
    @Test func aFullTableIsEmptiedBeforeTheNextEntry() {
        let memo = BoundedMemo<String, Int>(capacity: 3)
        memo.remember(1, for: "a")
        memo.remember(2, for: "b")
        memo.remember(3, for: "c")
        #expect(memo.count == 3)
        #expect([memo.value(for: "a"), memo.value(for: "b"), memo.value(for: "c")] == [1, 2, 3])

        memo.remember(4, for: "d")

        #expect(memo.count == 1)
        #expect(memo.value(for: "d") == 4)
        #expect([memo.value(for: "a"), memo.value(for: "b"), memo.value(for: "c")] == [nil, nil, nil])
    }

    @Test(arguments: [1, 3, 10, 64, 100, 8_192])
    func neverHoldsMoreThanItsCapacity(capacity: Int) {
        let memo = BoundedMemo<Int, Int>(capacity: capacity)
        var most = 0

        for argument in 0..<(capacity * 5 + 100) {
            memo.remember(argument * 2, for: argument)
            most = max(most, memo.count)
            #expect(memo.value(for: argument) == argument * 2)
        }

        #expect(most == capacity)
        for argument in 0..<(capacity * 5 + 100) {
            let value = memo.value(for: argument)
            #expect(value == nil || value == argument * 2)
        }
    }

    /// Threads keep their own tables: what one remembers, another does not see, and each table has the
    /// whole capacity.
    @Test func eachThreadRemembersForItself() throws {
        let memo = BoundedMemo<String, Int>(capacity: 2)
        memo.remember(1, for: "a")

        let seenElsewhere = try onAnotherThread { () -> (Int?, Int) in
            let before = memo.value(for: "a")
            memo.remember(2, for: "b")
            memo.remember(3, for: "c")
            return (before, memo.localCount)
        }

        #expect(seenElsewhere.0 == nil)
        #expect(seenElsewhere.1 == 2)
        #expect(memo.value(for: "a") == 1)
        #expect(memo.value(for: "b") == nil)
        #expect(memo.localCount == 1)
        #expect(memo.count == 3)
    }

    /// Many threads at once: what any of them reads is either nothing or the right result, and each
    /// thread's table stays within the bound.
    @Test func concurrentUseStaysBoundedAndCorrect() async {
        let memo = BoundedMemo<Int, String>(capacity: 256)

        let wrong = await withTaskGroup(of: Int.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var wrong = 0
                    for step in 0..<20_000 {
                        let argument = (step * 7 + task * 131) % 1_000
                        if let value = memo.value(for: argument) {
                            if value != String(argument) { wrong += 1 }
                        } else {
                            memo.remember(String(argument), for: argument)
                        }
                        if memo.localCount > 256 { wrong += 1 }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }

        #expect(wrong == 0)
        #expect(memo.count <= 256 * PerThread<Int>.defaultStripeCount)
    }
}

@Suite("RawQuery")
struct RawQueryTests {
    @Test(arguments: canonicallyEqualPairs)
    func queriesThatSwiftCallsEqualButWhoseBytesDifferAreDifferent(plain: String, other: String) {
        #expect(plain == other, "the pitfall RawQuery exists for")
        #expect(RawQuery(Substring(plain)) != RawQuery(Substring(other)))
        #expect(Set([RawQuery(Substring(plain)), RawQuery(Substring(other))]).count == 2)
    }

    @Test(arguments: canonicallyEqualPairs)
    func aMemoKeepsTheResultsOfCanonicallyEqualQueriesApart(plain: String, other: String) {
        let memo = BoundedMemo<RawQuery, String>(capacity: 64)

        memo.remember("plain", for: RawQuery(Substring(plain)))

        #expect(memo.value(for: RawQuery(Substring(other))) == nil)
        memo.remember("other", for: RawQuery(Substring(other)))
        #expect(memo.value(for: RawQuery(Substring(plain))) == "plain")
        #expect(memo.value(for: RawQuery(Substring(other))) == "other")
    }

    @Test(
        arguments: [
            ("page_size=1", "page_size=10"),
            ("page_size=1", "page_size=2"),
            ("a", "a\u{0}"),
            ("", "\u{0}"),
            ("search=a+b", "search=a%2Bb"),
            ("agent_id=A", "agent_id=a"),
        ]
    )
    func queriesWithDifferentBytesAreDifferent(first: String, second: String) {
        #expect(RawQuery(Substring(first)) != RawQuery(Substring(second)))
        #expect(RawQuery(Substring(second)) != RawQuery(Substring(first)))
    }

    /// Equal bytes are equal and hash alike, however the text is held: a slice of a longer target, a short
    /// string kept inline, or a long one on the heap.
    @Test(arguments: ["", "page_size=1", "agent_id=\u{212A}", "agent_id=" + String(repeating: "a", count: 300)])
    func equalBytesAreEqualAndHashAlike(query: String) throws {
        let target = "/v1/convai/test-invocations?" + query
        let slice = target[target.index(after: try #require(target.firstIndex(of: "?")))...]
        let copy = Substring(String(decoding: Array(query.utf8), as: UTF8.self))
        let sliced = RawQuery(slice)
        let whole = RawQuery(copy)

        #expect(sliced == whole)
        #expect(whole == sliced)
        #expect(sliced.hashValue == whole.hashValue)
        #expect(Set([sliced, whole]).count == 1)
        #expect(sliced.text.utf8.elementsEqual(query.utf8))
    }
}
