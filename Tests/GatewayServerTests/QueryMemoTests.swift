import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayServer

/// A valid query and a raw spelling of it that `String` calls equal but that holds unencoded non-ASCII
/// bytes, which the gateway refuses.
private let refusedTwins: [(valid: String, refused: String)] = [
    ("agent_id=K", "agent_id=\u{212A}"),  // Kelvin sign
    ("agent_id=a;b", "agent_id=a\u{037E}b"),  // Greek question mark
    ("search=a`", "search=a\u{1FEF}"),  // Greek varia
]

/// A query longer than the longest the service remembers.
private func longQuery(agent: String = "a", length: Int = 300) -> String {
    "agent_id=" + String(repeating: agent, count: length)
}

private func isHit(_ response: GatewayResponse) -> Bool {
    response.cacheStatus?.description.hasPrefix("xi-gateway; hit") == true
}

private func isEncodingRefusal(_ response: GatewayResponse) -> Bool {
    response.status == .badRequest && String(buffer: response.body).contains("\"invalid_query_encoding\"")
}

@Suite("ListService remembering parsed queries")
struct QueryMemoTests {
    @Test(arguments: refusedTwins)
    func aRefusedSpellingIsStillRefusedAfterItsTwinWasAnswered(valid: String, refused: String) throws {
        let fixture = ServiceFixture()

        let answered = try fixture.get(valid)
        let twin = try fixture.get(refused)
        let again = try fixture.get(valid)

        #expect(answered.status == .ok)
        #expect(isEncodingRefusal(twin))
        #expect(again.status == .ok)
        #expect(isHit(again))
        #expect(fixture.upstream.requests.count == 1)
    }

    @Test(arguments: refusedTwins)
    func aValidSpellingIsStillAnsweredAfterItsTwinWasRefused(valid: String, refused: String) throws {
        let fixture = ServiceFixture()

        let twin = try fixture.get(refused)
        let answered = try fixture.get(valid)
        let twinAgain = try fixture.get(refused)

        #expect(isEncodingRefusal(twin))
        #expect(answered.status == .ok)
        #expect(isEncodingRefusal(twinAgain))
        #expect(fixture.upstream.requests.count == 1)
    }

    /// The Kelvin sign percent-encoded is a valid query, and a different question from the letter K.
    @Test func anEncodedKelvinSignAndTheLetterKAreDifferentQuestions() throws {
        let fixture = ServiceFixture()

        let kelvin = try fixture.get("agent_id=%E2%84%AA")
        let letter = try fixture.get("agent_id=K")
        let kelvinAgain = try fixture.get("agent_id=%E2%84%AA")
        let letterAgain = try fixture.get("agent_id=K")

        #expect(kelvin.status == .ok)
        #expect(letter.status == .ok)
        #expect(fixture.upstream.requests.count == 2)
        #expect(kelvin.body != letter.body)
        #expect(kelvinAgain.body == kelvin.body)
        #expect(letterAgain.body == letter.body)
        #expect(isHit(kelvinAgain) && isHit(letterAgain))
    }

    /// Remembered or not, every spelling of one question finds the one page.
    @Test(
        arguments: [
            ("agent_id=a&page_size=7", "page_size=007&agent_id=%61"),
            ("", "page_size=30"),
            ("search=two+words", "search=two%20words"),
            ("page_size=10", "page_size=1_0"),
        ]
    )
    func equivalentSpellingsShareOneEntryAndOneUpstreamRequest(first: String, second: String) throws {
        let fixture = ServiceFixture()

        let miss = try fixture.get(first)
        let repeated = try [second, first, second, first].map { try fixture.get($0) }

        #expect(miss.status == .ok)
        #expect(repeated.allSatisfy(isHit))
        #expect(repeated.allSatisfy { $0.body == miss.body })
        #expect(fixture.upstream.requests.count == 1)
    }

    /// Two remembered queries that are different questions keep their own pages.
    @Test func rememberedQueriesKeepTheirOwnPages() throws {
        let fixture = ServiceFixture()

        let plus = try fixture.get("search=a+b")
        let encodedPlus = try fixture.get("search=a%2Bb")
        let plusAgain = try fixture.get("search=a+b")
        let encodedPlusAgain = try fixture.get("search=a%2Bb")

        #expect(fixture.upstream.requests.count == 2)
        #expect(plus.body != encodedPlus.body)
        #expect(plusAgain.body == plus.body)
        #expect(encodedPlusAgain.body == encodedPlus.body)
    }

    @Test func anInvalidQueryIsRefusedEveryTime() throws {
        let fixture = ServiceFixture()

        let responses = try (0..<3).map { _ in try fixture.get("page_size=0") }

        #expect(responses.allSatisfy { $0.status == .unprocessableEntity })
        #expect(fixture.upstream.requests.isEmpty)
    }

    /// Queries past the remembered length are parsed every time, and answered as any other.
    @Test(arguments: [247, 248, 300, 2_000])
    func aLongQueryIsAnsweredAndFound(agentLength: Int) throws {
        let fixture = ServiceFixture()
        let query = longQuery(length: agentLength)
        let encoded = "agent_id=%61" + String(repeating: "a", count: agentLength - 1)

        let miss = try fixture.get(query)
        let hit = try fixture.get(query)
        let spelledOtherwise = try fixture.get(encoded)

        #expect(miss.status == .ok)
        #expect(try #require(fixture.upstream.requests.first).target.contains(query))
        #expect(String(buffer: miss.body).contains(String(repeating: "a", count: agentLength)))
        #expect(isHit(hit))
        #expect(hit.body == miss.body)
        #expect(isHit(spelledOtherwise))
        #expect(fixture.upstream.requests.count == 1)
    }

    /// The query lengths above straddle the longest remembered query.
    @Test func theLongQueriesAboveStraddleTheRememberedLength() {
        #expect(longQuery(length: 247).utf8.count == ListService.longestRememberedQuery)
        #expect(longQuery(length: 248).utf8.count == ListService.longestRememberedQuery + 1)
    }

    @Test func aLongRefusedSpellingIsStillRefusedAfterItsTwinWasAnswered() throws {
        let fixture = ServiceFixture()

        let answered = try fixture.get(longQuery(agent: "K"))
        let twin = try fixture.get(longQuery(agent: "\u{212A}"))

        #expect(answered.status == .ok)
        #expect(isEncodingRefusal(twin))
        #expect(fixture.upstream.requests.count == 1)
    }
}
