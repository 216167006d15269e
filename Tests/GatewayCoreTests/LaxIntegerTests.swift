import Testing

@testable import GatewayCore

@Suite("LaxInteger: pydantic v2 lax integer reading")
struct LaxIntegerTests {
    /// Strings pydantic reads as integers, with the canonical value they must give.
    @Test(
        arguments: [
            ("5", "5"),
            ("007", "7"),
            ("+5", "5"),
            (" 5 ", "5"),
            ("\t5\n", "5"),
            ("\u{A0}5\u{3000}", "5"),
            ("1_0", "10"),
            ("1_000_000", "1000000"),
            ("1.0", "1"),
            ("12.000", "12"),
            ("1_0.00", "10"),
            ("0", "0"),
            ("000", "0"),
            ("-0", "0"),
            ("+0", "0"),
            ("-1", "-1"),
            ("-007", "-7"),
            ("0-1", "-1"),
            ("+05.00", "5"),
            ("-0_0", "0"),
            (" -5.0 ", "-5"),
            ("99999999999999999999", "99999999999999999999"),
        ]
    )
    func accepted(input: String, value: String) {
        #expect(LaxInteger.parse(input) == .value(value))
    }

    /// Strings pydantic refuses with `int_parsing`.
    @Test(
        arguments: [
            "",
            " ",
            "abc",
            "1.5",
            "1.01",
            "1e1",
            "0x10",
            "0b1",
            "true",
            "\u{0663}",
            "\u{FF15}",
            "+",
            "-",
            "+-1",
            "--1",
            "- 1",
            "1 2",
            "1__0",
            "_1",
            "1_",
            "+_1",
            "1_.0",
            "1.",
            "191.",
            "73_41.",
            "35. ",
            "\u{1C}5",
            "5\u{1F}",
            "\u{FEFF}5",
            "+-1",
            "-+1",
            "0+1",
            ".0",
            ".",
            "1.0.0",
            "1,0",
            "5\u{0}",
            "inf",
            "NaN",
        ]
    )
    func notAnInteger(input: String) {
        #expect(LaxInteger.parse(input) == .notAnInteger)
    }

    /// The limit is on the first run of digits as sent (jiter); a cleaned string over it is `int_parsing`.
    @Test func digitLimitCountsTheFirstRunOfDigitsAsSent() {
        let limit = LaxInteger.maximumDigits
        #expect(limit == 4300)
        let atLimit = String(repeating: "9", count: limit)
        let overLimit = atLimit + "9"
        #expect(LaxInteger.parse(atLimit) == .value(atLimit))
        #expect(LaxInteger.parse("-" + atLimit) == .value("-" + atLimit))
        #expect(LaxInteger.parse("  " + atLimit + "  ") == .value(atLimit))
        #expect(LaxInteger.parse(atLimit + ".0") == .value(atLimit))
        #expect(LaxInteger.parse(overLimit) == .tooLong)
        #expect(LaxInteger.parse("-" + overLimit) == .tooLong)
        #expect(LaxInteger.parse(overLimit + "x") == .tooLong)
        #expect(LaxInteger.parse(overLimit + ".5") == .tooLong)
        // Read only after cleaning: too many digits there is not an integer, not too long.
        #expect(LaxInteger.parse(" " + overLimit) == .notAnInteger)
        #expect(LaxInteger.parse("+" + overLimit) == .notAnInteger)
        #expect(LaxInteger.parse("0" + overLimit) == .notAnInteger)
    }

    @Test func leadingZerosDoNotCountAgainstTheLimit() {
        let zeros = String(repeating: "0", count: 5000)
        #expect(LaxInteger.parse(zeros + "1") == .value("1"))
        #expect(LaxInteger.parse(zeros) == .value("0"))
        #expect(LaxInteger.parse(String(repeating: "0", count: 4301) + "x") == .notAnInteger)
    }

    /// `compare` on canonical values of any length, against positive, zero and negative bounds.
    @Test(
        arguments: [
            ("5", 1, 1),
            ("1", 1, 0),
            ("0", 1, -1),
            ("-1", 1, -1),
            ("100", 100, 0),
            ("99", 100, -1),
            ("101", 100, 1),
            ("200", 100, 1),
            ("99999999999999999999", 100, 1),
            ("99999999999999999999", Int.max, 1),
            ("9223372036854775807", Int.max, 0),
            ("-99999999999999999999", Int.min, -1),
            ("-9223372036854775808", Int.min, 0),
            ("0", 0, 0),
            ("5", 0, 1),
            ("-1", 0, -1),
            ("0", -1, 1),
            ("-3", -5, 1),
            ("-5", -5, 0),
            ("-6", -5, -1),
            ("-10", -9, -1),
        ]
    )
    func compare(canonical: String, bound: Int, sign: Int) {
        #expect(LaxInteger.compare(canonical, with: bound).signum() == sign)
    }
}
