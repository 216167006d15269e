import Testing

@testable import GatewayCore

/// Sun, 06 Nov 1994 08:49:37 GMT, the date RFC 9110 uses in its examples.
private let rfcExampleTime = 784_111_777

@Suite("RetryAfter: delay-seconds")
struct RetryAfterSecondsTests {
    @Test(
        arguments: [
            ("0", 0),
            ("1", 1),
            ("120", 120),
            (" 5 ", 5),
            ("\t5\t", 5),
            ("007", 7),
            ("3600", 3_600),
            ("999999999", 999_999_999),
            ("1000000000", 999_999_999),
            ("99999999999999999999999999999999", 999_999_999),
        ]
    )
    func seconds(value: String, expected: Int) {
        #expect(RetryAfter.seconds(from: value, now: rfcExampleTime) == expected)
    }

    @Test(arguments: ["abc", "", "   ", "-1", "1.5", "+5", "5s", "1 2", "0x10", "1e3", "\u{0665}"])
    func notADelay(value: String) {
        #expect(RetryAfter.seconds(from: value, now: rfcExampleTime) == nil)
    }

    /// Many digits are capped because they mean an absurd delay; leading zeros do not make a delay longer.
    @Test(arguments: [("0000000005", 5), ("00000000000", 0), ("0000000000120", 120)])
    func leadingZerosDoNotCountTowardsTheCap(value: String, expected: Int) {
        #expect(RetryAfter.seconds(from: value, now: rfcExampleTime) == expected)
    }
}

@Suite("RetryAfter: IMF-fixdate")
struct RetryAfterDateTests {
    @Test(
        arguments: [
            ("Sun, 06 Nov 1994 08:49:37 GMT", rfcExampleTime, 0),
            ("Sun, 06 Nov 1994 08:49:39 GMT", rfcExampleTime, 2),
            ("Sun, 06 Nov 1994 09:49:37 GMT", rfcExampleTime, 3_600),
            ("Mon, 07 Nov 1994 08:49:37 GMT", rfcExampleTime, 86_400),
            ("  Sun, 06 Nov 1994 08:49:38 GMT ", rfcExampleTime, 1),
            ("Sat, 01 Jan 2000 00:00:00 GMT", 946_684_799, 1),
            ("Wed, 01 Mar 2000 00:00:00 GMT", 951_696_000, 2 * 86_400),
            ("Sun, 06 Nov 1994 08:49:36 GMT", rfcExampleTime, 0),
            ("Sat, 05 Nov 1994 08:49:37 GMT", rfcExampleTime, 0),
            ("Thu, 01 Jan 1970 00:00:00 GMT", rfcExampleTime, 0),
        ]
    )
    func dateRelativeToNow(value: String, now: Int, expected: Int) {
        #expect(RetryAfter.seconds(from: value, now: now) == expected)
    }

    @Test func theRFCExampleDateParsesToItsTimestamp() {
        #expect(RetryAfter.httpDate("Sun, 06 Nov 1994 08:49:37 GMT") == rfcExampleTime)
        #expect(RetryAfter.httpDate("Thu, 01 Jan 1970 00:00:00 GMT") == 0)
        #expect(RetryAfter.httpDate("Tue, 19 Jan 2038 03:14:08 GMT") == 2_147_483_648)
    }

    @Test(
        arguments: [
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sun, 06 Nov 1994 8h:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, xx Nov 1994 08:49:37 GMT",
            "GMT",
        ]
    )
    func malformedDate(value: String) {
        #expect(RetryAfter.seconds(from: value, now: rfcExampleTime) == nil)
    }
}

@Suite("RetryAfter: days since 1970")
struct RetryAfterCalendarTests {
    @Test(
        arguments: [
            (1970, 1, 1, 0),
            (1970, 1, 2, 1),
            (1969, 12, 31, -1),
            (1972, 3, 1, 790),
            (1994, 11, 6, 9_075),
            (2000, 1, 1, 10_957),
            (2000, 2, 29, 11_016),
            (2000, 3, 1, 11_017),
            (2038, 1, 19, 24_855),
            (2100, 3, 1, 47_541),
            (9999, 12, 31, 2_932_896),
        ]
    )
    func daysSinceEpoch(year: Int, month: Int, day: Int, expected: Int) {
        #expect(RetryAfter.daysSinceEpoch(year: year, month: month, day: day) == expected)
    }
}
