import Testing

@testable import GatewayCore

/// Parses `query` as the part of a request target after `?`.
private func parse(_ query: String) -> Result<ListQuery, ListQuery.Failure> {
    Result { () throws(ListQuery.Failure) -> ListQuery in try ListQuery.parse(query[...]) }
}

/// The issues a query is refused with; empty when it is accepted or malformed.
private func issues(_ query: String) -> [ValidationIssue] {
    guard case .failure(.invalid(let issues)) = parse(query) else { return [] }
    return issues
}

private func canonical(_ query: String) -> String? {
    guard case .success(let parsed) = parse(query) else { return nil }
    return parsed.canonicalQuery
}

private let intParsingMessage = "Input should be a valid integer, unable to parse string as an integer"

/// An expected issue written out field by field, independently of the source's factories.
private func expected(
    _ type: String,
    _ name: String,
    _ message: String,
    input: String,
    context: [(String, Int)] = []
) -> ValidationIssue {
    ValidationIssue(
        type: type,
        location: ["query", name],
        message: message,
        input: input,
        context: context.map { ValidationIssue.Context(name: $0.0, value: $0.1) }
    )
}

@Suite("ListQuery: the upstream's integer rules for page_size")
struct ListQueryPageSizeTests {
    /// The "accepted" row of api/README.md, as query text and the canonical value it must give.
    @Test(
        arguments: [
            ("5", "5"),
            ("007", "7"),
            ("%2B5", "5"),
            ("+5+", "5"),
            ("%205%20", "5"),
            ("1_0", "10"),
            ("1.0", "1"),
            ("1", "1"),
            ("100", "100"),
        ]
    )
    func accepted(text: String, value: String) throws {
        let query = try parse("page_size=" + text).get()
        #expect(query["page_size"] == value)
        #expect(query.canonicalQuery == "page_size=" + value)
    }

    /// The `int_parsing` row: query text and the form-decoded input the 422 must echo.
    @Test(
        arguments: [
            ("", ""),
            ("abc", "abc"),
            ("1.5", "1.5"),
            ("1e1", "1e1"),
            ("0x10", "0x10"),
            ("true", "true"),
            ("%D9%A3", "\u{0663}"),
        ]
    )
    func intParsing(text: String, input: String) {
        #expect(issues("page_size=" + text) == [expected("int_parsing", "page_size", intParsingMessage, input: input)])
    }

    @Test(arguments: ["0", "-1"])
    func belowMinimum(text: String) {
        let message = "Input should be greater than or equal to 1"
        #expect(
            issues("page_size=" + text) == [
                expected("greater_than_equal", "page_size", message, input: text, context: [("ge", 1)])
            ]
        )
    }

    @Test(arguments: ["101", "500", "99999999999999999999"])
    func aboveMaximum(text: String) {
        let message = "Input should be less than or equal to 100"
        #expect(
            issues("page_size=" + text) == [
                expected("less_than_equal", "page_size", message, input: text, context: [("le", 100)])
            ]
        )
    }

    @Test func tooManyDigitsIsIntParsingSize() {
        let digits = String(repeating: "1", count: 4301)
        let message = "Unable to parse input string as an integer, exceeded maximum size"
        #expect(issues("page_size=" + digits) == [expected("int_parsing_size", "page_size", message, input: digits)])
        #expect(issues("start_time=" + digits) == [expected("int_parsing_size", "start_time", message, input: digits)])
    }

    @Test func repeatedParameterLastValueCounts() throws {
        let message = "Input should be less than or equal to 100"
        #expect(
            issues("page_size=5&page_size=500") == [
                expected("less_than_equal", "page_size", message, input: "500", context: [("le", 100)])
            ]
        )
        #expect(try parse("page_size=500&page_size=5").get()["page_size"] == "5")
    }

    @Test func nameInOtherCaseIsAnExtraParameter() {
        #expect(
            issues("PAGE_SIZE=0") == [
                expected("extra_forbidden", "PAGE_SIZE", "Extra inputs are not permitted", input: "0")
            ]
        )
    }
}

@Suite("ListQuery: 422 bodies")
struct ListQueryErrorBodyTests {
    /// The three bodies of api/README.md, byte for byte.
    @Test(
        arguments: [
            (
                "page_size=0",
                #"{"detail":[{"type":"greater_than_equal","loc":["query","page_size"],"#
                    + #""msg":"Input should be greater than or equal to 1","input":"0","ctx":{"ge":1}}]}"#
            ),
            (
                "page_size=abc",
                #"{"detail":[{"type":"int_parsing","loc":["query","page_size"],"#
                    + #""msg":"Input should be a valid integer, unable to parse string as an integer","input":"abc"}]}"#
            ),
            (
                "colour=blue",
                #"{"detail":[{"type":"extra_forbidden","loc":["query","colour"],"#
                    + #""msg":"Extra inputs are not permitted","input":"blue"}]}"#
            ),
        ]
    )
    func readmeBody(query: String, body: String) {
        let found = issues(query)
        #expect(!found.isEmpty)
        #expect(ValidationIssue.body(for: found) == body)
    }

    @Test func severalErrorsInSchemaOrderThenExtrasInOrderOfAppearance() {
        let found = issues("zeta=1&end_time=x&colour=blue&page_size=0&start_time=y&agent_id=ok&zeta=2")
        #expect(
            found.map(\.type) == [
                "greater_than_equal", "int_parsing", "int_parsing", "extra_forbidden", "extra_forbidden",
            ]
        )
        #expect(
            found.map(\.location) == [
                ["query", "page_size"], ["query", "start_time"], ["query", "end_time"], ["query", "zeta"],
                ["query", "colour"],
            ]
        )
        #expect(found.map(\.input) == ["0", "y", "x", "2", "blue"])
    }

    @Test func escapedInputIsEchoedAsValidJSON() {
        let found = issues("colour=%22%5C%0A%C3%A9")
        let body = ValidationIssue.body(for: found)
        #expect(found.map(\.input) == ["\"\\\n\u{E9}"])
        #expect(body.contains(#""input":"\"\\\né""#))
        #expect(JSONValidator.isValid(Array(body.utf8)))
    }
}

@Suite("ListQuery: values and normalisation")
struct ListQueryNormalisationTests {
    @Test func emptyValueIsTheEmptyStringNotAbsent() throws {
        let empty = try parse("agent_id=").get()
        let bare = try parse("agent_id").get()
        let absent = try parse("").get()
        #expect(empty["agent_id"] == "")
        #expect(bare["agent_id"] == "")
        #expect(absent["agent_id"] == nil)
        #expect(empty.canonicalQuery == "agent_id=&page_size=30")
        #expect(bare == empty)
        #expect(absent.canonicalQuery == "page_size=30")
        #expect(absent != empty)
    }

    @Test func absentPageSizeIsTheDefault() throws {
        let query = try parse("cursor=abc").get()
        #expect(query["page_size"] == "30")
        #expect(query["cursor"] == "abc")
        #expect(query["colour"] == nil)
    }

    /// Pairs the upstream reads the same way: same query, same canonical text, same cache key.
    @Test(
        arguments: [
            ("agent_id=a&page_size=7", "page_size=7&agent_id=a"),
            ("agent_id=a", "agent_id=%61"),
            ("agent_id=%61&page_size=007", "page_size=%2B7&agent_id=a"),
            ("", "page_size=30"),
            ("", "page_size=030"),
            ("&&", "page_size=+30+"),
            ("search=hello+world", "search=hello%20world"),
            ("cursor=x&cursor=y", "cursor=y"),
            ("agent_id", "agent_id="),
            ("start_time=1_000&end_time=2.0", "end_time=2&start_time=1000"),
        ]
    )
    func equivalentQueriesShareAKey(lhs: String, rhs: String) throws {
        let left = try parse(lhs).get()
        let right = try parse(rhs).get()
        #expect(left == right)
        #expect(left.canonicalQuery == right.canonicalQuery)
        #expect(CacheKey(credential: "c", query: left) == CacheKey(credential: "c", query: right))
        #expect(CacheKey(credential: "c", query: left).hashValue == CacheKey(credential: "c", query: right).hashValue)
    }

    /// Pairs the upstream reads differently: never the same key.
    @Test(
        arguments: [
            ("agent_id=a", "agent_id=b"),
            ("", "agent_id="),
            ("page_size=30", "page_size=31"),
            ("search=a+b", "search=a%2Bb"),
            ("agent_id=x", "cursor=x"),
            ("agent_id=a%26page_size%3D100", "agent_id=a&page_size=100"),
            ("agent_id=A", "agent_id=a"),
            ("start_time=-1", "start_time=1"),
            ("agent_id=%C3%A9", "agent_id=e%CC%81"),
        ]
    )
    func differentQueriesNeverShareAKey(lhs: String, rhs: String) throws {
        let left = try parse(lhs).get()
        let right = try parse(rhs).get()
        #expect(left != right)
        #expect(left.canonicalQuery != right.canonicalQuery)
        #expect(CacheKey(credential: "c", query: left) != CacheKey(credential: "c", query: right))
    }

    @Test func sameQueryWithAnotherCredentialIsAnotherKey() throws {
        let query = try parse("agent_id=a").get()
        #expect(CacheKey(credential: "one", query: query) != CacheKey(credential: "two", query: query))
        #expect(CacheKey(credential: "one", query: query).query == query.canonicalQuery)
    }

    @Test func encodedSeparatorsStayInsideOneValue() throws {
        let query = try parse("agent_id=a%26page_size%3D100").get()
        #expect(query["agent_id"] == "a&page_size=100")
        #expect(query["page_size"] == "30")
        #expect(query.canonicalQuery == "agent_id=a%26page_size%3D100&page_size=30")
        #expect(try parse(query.canonicalQuery).get() == query)
    }

    @Test func canonicalQueryEncodesEverythingButUnreservedCharacters() throws {
        let query = try parse("search=a+b%2Bc%25d%23e%3Ff%2Fg~h.i-j_k%C3%A9").get()
        #expect(query["search"] == "a b+c%d#e?f/g~h.i-j_k\u{E9}")
        #expect(query.canonicalQuery == "page_size=30&search=a%20b%2Bc%25d%23e%3Ff%2Fg~h.i-j_k%C3%A9")
    }

    /// Reading a canonical query back gives the same query: what is sent upstream means what was asked.
    @Test(
        arguments: [
            "agent_id=a%26page_size%3D100",
            "search=%22%5C%0A%00&cursor=+",
            "agent_id=&cursor=&search=",
            "page_size=007&start_time=-0&end_time=1_0",
            "branch_id=%F0%9F%98%80&created_by_user_id=u&test_id=t&version_id=v",
        ]
    )
    func canonicalQueryRoundTrips(text: String) throws {
        let query = try parse(text).get()
        let again = try parse(query.canonicalQuery).get()
        #expect(again == query)
        #expect(again.canonicalQuery == query.canonicalQuery)
    }

    @Test func canonicalQueryFollowsSchemaOrder() throws {
        let text =
            "end_time=9&start_time=8&search=s&version_id=v&test_id=t&created_by_user_id=u&branch_id=b&cursor=c"
            + "&page_size=2&agent_id=a"
        let query = try parse(text).get()
        #expect(
            query.canonicalQuery
                == "agent_id=a&page_size=2&cursor=c&branch_id=b&created_by_user_id=u&test_id=t&version_id=v"
                + "&search=s&start_time=8&end_time=9"
        )
        #expect(query.values.count == ListQuerySchema.parameters.count)
    }

    @Test(
        arguments: [
            ("99999999999999999999999999999999", "99999999999999999999999999999999"),
            ("-99999999999999999999999999999999", "-99999999999999999999999999999999"),
            ("-5", "-5"),
            ("0", "0"),
            ("-0", "0"),
            ("+0012", "12"),
        ]
    )
    func timeBoundsHaveNoRange(text: String, value: String) throws {
        let query = try parse("start_time=\(text)&end_time=\(text)").get()
        #expect(query["start_time"] == value)
        #expect(query["end_time"] == value)
    }
}

@Suite("ListQuery: malformed queries")
struct ListQueryMalformedTests {
    @Test(
        arguments: [
            ("%zz", FormDecoder.Failure.badEscape),
            ("agent_id=%zz", .badEscape),
            ("agent_id=%", .badEscape),
            ("agent_id=%4", .badEscape),
            ("agent_id=%4&page_size=5", .badEscape),
            ("page_size=5&agent_id=a%", .badEscape),
            ("agent_id=%FF", .invalidUTF8),
            ("%FF=1", .invalidUTF8),
            ("agent_id=%C3", .invalidUTF8),
            ("agent_id=%ED%A0%80", .invalidUTF8),
            ("agent_id=a b", .unencodedByte(0x20)),
            ("agent_id=\u{E9}", .unencodedByte(0xC3)),
        ]
    )
    func malformedQueriesThrow(text: String, failure: FormDecoder.Failure) {
        #expect(throws: ListQuery.Failure.malformed(failure)) { try ListQuery.parse(text[...]) }
    }

    @Test func malformedWinsOverInvalid() {
        #expect(throws: ListQuery.Failure.malformed(.badEscape)) { try ListQuery.parse("page_size=0&colour=%zz"[...]) }
    }
}
