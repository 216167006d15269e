import GatewayCore
import Testing

@Suite("Content negotiation: Accept-Encoding, entity tags, HTTP dates")
struct ContentNegotiationTests {
    /// RFC 9110, section 12.5.3: gzip by name (or `x-gzip`) with q > 0, else `*` with q > 0.
    @Test(
        arguments: [
            ("gzip", true),
            ("GZIP", true),
            ("x-gzip", true),
            ("gzip, deflate, br, zstd", true),
            ("deflate, gzip;q=1.0, *;q=0.5", true),
            ("br;q=1, gzip;q=0.001", true),
            ("gzip; q=0.5", true),
            ("gzip;Q=0.5", true),
            ("*", true),
            ("*;q=0.1", true),
            ("identity;q=1, *;q=0.5", true),
            ("", false),
            ("identity", false),
            ("br, deflate", false),
            ("gzip;q=0", false),
            ("gzip;q=0.000", false),
            ("*;q=0", false),
            ("gzip;q=0, *", false),
            ("*, gzip;q=0", false),
            ("gzip;q=2", false),
            ("gzip;q=0.5555", false),
            ("gzip;q=abc", false),
            ("gzipped", false),
            ("x-gzip;q=0", false),
        ]
    )
    func acceptEncoding(value: String, allowsGzip: Bool) {
        #expect(AcceptEncoding.allowsGzip(value) == allowsGzip)
    }

    /// Weak comparison (RFC 9110, section 8.8.3.2): `W/` on either side does not matter; `*` matches any.
    @Test(
        arguments: [
            (#""abc""#, true),
            (#"W/"abc""#, true),
            (#""x", "abc""#, true),
            (#""x","abc""#, true),
            (#" "x" , W/"abc" "#, true),
            ("*", true),
            (" * ", true),
            (#""abcd""#, false),
            (#""ab""#, false),
            ("abc", false),
            (#""abc"#, false),
            (#""x" "abc""#, false),
            (#""a b", "abc""#, false),
            (#"*, "abc""#, false),
            ("", false),
        ]
    )
    func ifNoneMatch(list: String, matches: Bool) {
        #expect(EntityTag.list(list, matchesWeakly: #""abc""#) == matches)
        #expect(EntityTag.list(list, matchesWeakly: #"W/"abc""#) == matches)
    }

    @Test(
        arguments: [
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_796_601_599, "Sun, 06 Dec 2026 23:59:59 GMT"),
        ]
    )
    func datesAreWrittenAsIMFFixdateAndReadBack(seconds: Int, text: String) {
        #expect(HTTPDate.format(seconds) == text)
        #expect(HTTPDate.parse(text, now: seconds) == seconds)
    }

    /// `If-None-Match` decides alone when present; `If-Modified-Since` compares whole seconds; an invalid
    /// date is ignored (RFC 9110, section 13.1.3).
    @Test func conditionsDecideA304() {
        let modified = 784_111_777
        func negotiation(_ tag: String?, _ since: String?) -> ContentNegotiation {
            ContentNegotiation(acceptEncoding: nil, ifNoneMatch: tag, ifModifiedSince: since, now: modified)
        }
        let tag: Substring = #""t1""#
        #expect(negotiation(#""t1""#, nil).isNotModified(entityTag: tag, lastModified: modified))
        #expect(!negotiation(#""t0""#, nil).isNotModified(entityTag: tag, lastModified: modified))
        #expect(
            !negotiation(#""t0""#, "Sun, 06 Nov 1994 08:49:37 GMT").isNotModified(
                entityTag: tag,
                lastModified: modified
            ),
            "If-None-Match decides alone"
        )
        #expect(negotiation(nil, "Sun, 06 Nov 1994 08:49:37 GMT").isNotModified(entityTag: tag, lastModified: modified))
        #expect(negotiation(nil, "Mon, 07 Nov 1994 08:49:37 GMT").isNotModified(entityTag: tag, lastModified: modified))
        #expect(
            !negotiation(nil, "Sun, 06 Nov 1994 08:49:36 GMT").isNotModified(entityTag: tag, lastModified: modified)
        )
        #expect(!negotiation(nil, "yesterday").isConditional)
        #expect(!negotiation(nil, "Sun, 06 Nov 1994 08:49:37 GMT,Sun, 06 Nov 1994 08:49:37 GMT").isConditional)
        #expect(!negotiation(nil, nil).isConditional)
    }
}
