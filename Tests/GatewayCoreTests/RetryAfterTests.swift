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

    @Test(
        arguments: [
            ("Sun, 06 Nov 1994 08:49:37 GMT", rfcExampleTime),
            ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
            ("Tue, 19 Jan 2038 03:14:08 GMT", 2_147_483_648),
            ("Tue, 29 Feb 2000 12:00:00 GMT", 951_825_600),
            ("Wed, 31 Dec 1969 23:59:59 GMT", -1),
            ("Sat, 31 Dec 2016 23:59:60 GMT", 1_483_228_800),
            // The day name must be one, but is not checked against the date.
            ("Mon, 06 Nov 1994 08:49:37 GMT", rfcExampleTime),
        ]
    )
    func parsesToItsTimestamp(value: String, expected: Int) {
        #expect(RetryAfter.httpDate(value, now: rfcExampleTime) == expected)
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
            // Day names.
            "Sux, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06 Nov 1994 08:49:37 GMT",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "SUN, 06 Nov 1994 08:49:37 GMT",
            ", 06 Nov 1994 08:49:37 GMT",
            // Months.
            "Sun, 06 November 1994 08:49:37 GMT",
            "Sun, 06 NOV 1994 08:49:37 GMT",
            // Fields out of range, or of the wrong width.
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Tue, 29 Feb 1994 08:49:37 GMT",
            "Thu, 29 Feb 1900 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 01994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:7 GMT",
            "Sun,  06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994  08:49:37 GMT",
        ]
    )
    func malformedDate(value: String) {
        #expect(RetryAfter.seconds(from: value, now: rfcExampleTime) == nil)
    }
}

/// 2026-11-06 08:49:37 UTC: 32 years after the RFC's example, so that two-digit years can fall either way.
private let year2026 = 1_793_954_977

@Suite("RetryAfter: obsolete RFC 850 date")
struct RetryAfterRFC850Tests {
    @Test(
        arguments: [
            ("Sunday, 06-Nov-94 08:49:37 GMT", rfcExampleTime, rfcExampleTime),
            ("Sunday, 06-Nov-94 08:49:39 GMT", rfcExampleTime, rfcExampleTime + 2),
            ("Monday, 07-Nov-94 08:49:37 GMT", rfcExampleTime, rfcExampleTime + 86_400),
            ("Thursday, 01-Jan-70 00:00:00 GMT", rfcExampleTime, 0),
            // Two-digit years. In 2026, 94 would be 2094, 68 years ahead: it is 1994.
            ("Sunday, 06-Nov-94 08:49:37 GMT", year2026, rfcExampleTime),
            // 2045 is 19 years ahead: it stays 2045.
            ("Monday, 08-May-45 00:00:00 GMT", year2026, 2_377_814_400),
            // Exactly 50 years ahead is not more than 50: 2076. A second later is: 1976.
            ("Friday, 06-Nov-76 08:49:37 GMT", year2026, 3_371_878_177),
            ("Saturday, 06-Nov-76 08:49:38 GMT", year2026, 216_118_178),
            // In 2099, 01 is 2101, 19 months ahead, not 2001.
            ("Saturday, 01-Jan-01 00:00:00 GMT", 4_083_955_200, 4_133_980_800),
            // 29 February of 00: 2000. In 2060, 2100 is near but has no 29 February.
            ("Tuesday, 29-Feb-00 12:00:00 GMT", year2026, 951_825_600),
            ("Tuesday, 29-Feb-00 12:00:00 GMT", 2_840_140_800, 951_825_600),
            // In 1994, 45 is 1945, 51 years back (2045 would be 51 ahead).
            ("Tuesday, 08-May-45 00:00:00 GMT", rfcExampleTime, -777_945_600),
        ]
    )
    func parsesToItsTimestamp(value: String, now: Int, expected: Int) {
        #expect(RetryAfter.httpDate(value, now: now) == expected)
    }

    @Test(
        arguments: [
            ("Sunday, 06-Nov-94 08:49:39 GMT", 2),
            ("  Sunday, 06-Nov-94 09:49:37 GMT\t", 3_600),
            ("Saturday, 05-Nov-94 08:49:37 GMT", 0),
        ]
    )
    func delay(value: String, expected: Int) {
        #expect(RetryAfter.seconds(from: value, now: rfcExampleTime) == expected)
    }

    @Test(
        arguments: [
            // Day names: the long form only.
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sundai, 06-Nov-94 08:49:37 GMT",
            "sunday, 06-Nov-94 08:49:37 GMT",
            "Sunday 06-Nov-94 08:49:37 GMT",
            "Sundays, 06-Nov-94 08:49:37 GMT",
            // Months.
            "Sunday, 06-Nox-94 08:49:37 GMT",
            "Sunday, 06-nov-94 08:49:37 GMT",
            "Sunday, 06-11-94 08:49:37 GMT",
            // The shape: two-digit year, dashes, GMT.
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sunday, 06 Nov 94 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37",
            "Sunday, 06-Nov-94 08:49:37 UTC",
            "Sunday, 06-Nov-94 08:49:37 GMT extra",
            "Sunday, 6-Nov-94 08:49:37 GMT",
            // Fields out of range.
            "Sunday, 00-Nov-94 08:49:37 GMT",
            "Sunday, 31-Nov-94 08:49:37 GMT",
            "Sunday, 32-Dec-94 08:49:37 GMT",
            "Tuesday, 29-Feb-94 08:49:37 GMT",
            "Sunday, 06-Nov-94 24:00:00 GMT",
            "Sunday, 06-Nov-94 08:60:00 GMT",
            "Sunday, 06-Nov-94 08:49:61 GMT",
        ]
    )
    func malformedDate(value: String) {
        #expect(RetryAfter.seconds(from: value, now: rfcExampleTime) == nil)
    }
}

@Suite("RetryAfter: asctime date")
struct RetryAfterAsctimeTests {
    @Test(
        arguments: [
            ("Sun Nov  6 08:49:37 1994", rfcExampleTime),
            ("Sun Nov 06 08:49:37 1994", rfcExampleTime),
            ("Thu Jan  1 00:00:00 1970", 0),
            ("Tue Feb 29 12:00:00 2000", 951_825_600),
            ("Tue Jan 19 03:14:08 2038", 2_147_483_648),
        ]
    )
    func parsesToItsTimestamp(value: String, expected: Int) {
        #expect(RetryAfter.httpDate(value, now: rfcExampleTime) == expected)
    }

    @Test(arguments: [("Sun Nov  6 08:49:39 1994", 2), (" Mon Nov  7 08:49:37 1994 ", 86_400)])
    func delay(value: String, expected: Int) {
        #expect(RetryAfter.seconds(from: value, now: rfcExampleTime) == expected)
    }

    @Test(
        arguments: [
            // Day names: the short form only.
            "Sux Nov  6 08:49:37 1994",
            "Sunday Nov  6 08:49:37 1994",
            "sun Nov  6 08:49:37 1994",
            "Sun, Nov  6 08:49:37 1994",
            // Months.
            "Sun Nox  6 08:49:37 1994",
            "Sun nov  6 08:49:37 1994",
            // The shape: the day as two digits or a space and one, the year last, no zone.
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov   6 08:49:37 1994",
            "Sun Nov  06 08:49:37 1994",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov  6 08:49:37 1994 GMT",
            "Sun Nov  6 1994 08:49:37",
            // Fields out of range.
            "Sun Nov  0 08:49:37 1994",
            "Sun Nov 31 08:49:37 1994",
            "Sun Dec 32 08:49:37 1994",
            "Tue Feb 29 08:49:37 1994",
            "Sun Nov  6 24:00:00 1994",
            "Sun Nov  6 08:60:37 1994",
            "Sun Nov  6 08:49:61 1994",
        ]
    )
    func malformedDate(value: String) {
        #expect(RetryAfter.seconds(from: value, now: rfcExampleTime) == nil)
    }
}

@Suite("RetryAfter: calendar")
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
        let date = RetryAfter.civilDate(daysSinceEpoch: expected)
        #expect(date.year == year && date.month == month && date.day == day)
    }

    @Test(
        arguments: [
            (2026, 1, 31), (2026, 2, 28), (2024, 2, 29), (2000, 2, 29), (1900, 2, 28), (2100, 2, 28),
            (2026, 4, 30), (2026, 6, 30), (2026, 9, 30), (2026, 11, 30), (2026, 12, 31),
        ]
    )
    func daysInMonth(year: Int, month: Int, expected: Int) {
        #expect(RetryAfter.daysInMonth(year: year, month: month) == expected)
    }
}
