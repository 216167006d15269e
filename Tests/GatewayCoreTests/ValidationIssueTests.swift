import Testing

@testable import GatewayCore

@Suite("ValidationIssue and JSONText: the upstream's bytes")
struct ValidationIssueTests {
    /// The three example bodies of api/README.md, built from issues written out field by field.
    @Test func readmeBodiesByteForByte() {
        let belowMinimum = ValidationIssue(
            type: "greater_than_equal",
            location: ["query", "page_size"],
            message: "Input should be greater than or equal to 1",
            input: "0",
            context: [ValidationIssue.Context(name: "ge", value: 1)]
        )
        let notAnInteger = ValidationIssue(
            type: "int_parsing",
            location: ["query", "page_size"],
            message: "Input should be a valid integer, unable to parse string as an integer",
            input: "abc",
            context: []
        )
        let extra = ValidationIssue(
            type: "extra_forbidden",
            location: ["query", "colour"],
            message: "Extra inputs are not permitted",
            input: "blue",
            context: []
        )
        #expect(
            ValidationIssue.body(for: [belowMinimum])
                == #"{"detail":[{"type":"greater_than_equal","loc":["query","page_size"],"#
                + #""msg":"Input should be greater than or equal to 1","input":"0","ctx":{"ge":1}}]}"#
        )
        #expect(
            ValidationIssue.body(for: [notAnInteger])
                == #"{"detail":[{"type":"int_parsing","loc":["query","page_size"],"#
                + #""msg":"Input should be a valid integer, unable to parse string as an integer","input":"abc"}]}"#
        )
        #expect(
            extra.json
                == #"{"type":"extra_forbidden","loc":["query","colour"],"msg":"Extra inputs are not permitted","#
                + #""input":"blue"}"#
        )
        #expect(ValidationIssue.body(for: [extra]) == #"{"detail":["# + extra.json + "]}")
        #expect(
            ValidationIssue.body(for: [belowMinimum, extra])
                == #"{"detail":["# + belowMinimum.json + "," + extra.json + "]}"
        )
    }

    @Test func sourceFactoriesUsePydanticsTexts() {
        #expect(ValidationIssue.lessThanEqual("page_size", "500", 100).json.hasSuffix(#""ctx":{"le":100}}"#))
        #expect(
            ValidationIssue.lessThanEqual("page_size", "500", 100).message
                == "Input should be less than or equal to 100"
        )
        #expect(ValidationIssue.greaterThanEqual("start_time", "-9", -3).json.hasSuffix(#""ctx":{"ge":-3}}"#))
        #expect(
            ValidationIssue.intParsingSize("page_size", "1").message
                == "Unable to parse input string as an integer, exceeded maximum size"
        )
    }

    @Test func emptyDetailIsAnEmptyList() {
        #expect(ValidationIssue.body(for: []) == #"{"detail":[]}"#)
    }

    @Test func inputIsEscaped() {
        let issue = ValidationIssue.extraForbidden("co\"l", "a\\b\n\u{1}\u{E9}")
        let expected =
            #"{"type":"extra_forbidden","loc":["query","co\"l"],"msg":"Extra inputs are not permitted","#
            + #""input":"a\\b\n\u0001"# + "\u{E9}\"}"
        #expect(Array(issue.json.utf8) == Array(expected.utf8))
        #expect(JSONValidator.isValid(Array(ValidationIssue.body(for: [issue]).utf8)))
    }

    /// Python's `json.dumps(ensure_ascii=False)`: short escapes where it has them, `\u00XX` (lowercase) for
    /// other control characters, everything else (DEL, `/`, non-ASCII, U+2028) as it is.
    @Test(
        arguments: [
            ("", #""""#),
            ("plain", #""plain""#),
            ("a\"b", #""a\"b""#),
            ("a\\b", #""a\\b""#),
            ("\\\"", #""\\\"""#),
            ("\n\r\t", #""\n\r\t""#),
            ("\u{8}\u{C}", #""\b\f""#),
            ("\u{0}", #""\u0000""#),
            ("\u{1}\u{1F}", #""\u0001\u001f""#),
            ("\u{B}\u{1B}", #""\u000b\u001b""#),
            ("\u{7F}", "\"\u{7F}\""),
            ("a/b", #""a/b""#),
            ("\u{E9}", "\"\u{E9}\""),
            ("\u{0663}", "\"\u{0663}\""),
            ("\u{1F600}", "\"\u{1F600}\""),
            ("\u{2028}", "\"\u{2028}\""),
            ("e\u{301}", "\"e\u{301}\""),
        ]
    )
    func quoted(raw: String, json: String) {
        let quoted = JSONText.quoted(raw)
        #expect(Array(quoted.utf8) == Array(json.utf8))
        #expect(JSONValidator.isValid(Array(quoted.utf8)))
    }

    @Test func errorBodyHasAnObjectDetail() {
        #expect(
            ErrorBody.json(status: "invalid_api_key", message: "Invalid API key")
                == #"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#
        )
        #expect(
            ErrorBody.json(status: "system_busy", message: "say \"later\"")
                == #"{"detail":{"status":"system_busy","message":"say \"later\""}}"#
        )
    }
}
