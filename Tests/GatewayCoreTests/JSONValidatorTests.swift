import Testing

@testable import GatewayCore

/// Runs the validator over contiguous bytes and over a collection without contiguous storage, which
/// takes the copying path; both must agree.
private func validate(_ bytes: [UInt8]) -> Bool {
    let contiguous = JSONValidator.isValid(bytes)
    let lazy = JSONValidator.isValid(bytes.lazy.map { $0 })
    #expect(contiguous == lazy)
    return contiguous
}

private func nested(_ depth: Int, open: String, close: String, inner: String = "") -> [UInt8] {
    Array((String(repeating: open, count: depth) + inner + String(repeating: close, count: depth)).utf8)
}

@Suite("JSONValidator: RFC 8259 documents")
struct JSONValidatorTests {
    @Test(
        arguments: [
            "{}",
            "[]",
            "\"x\"",
            "\"\"",
            "0",
            "-0",
            "12",
            "1.5",
            "-1.25e-3",
            "1E+2",
            "1e2",
            "0.0e0",
            "true",
            "false",
            "null",
            " \t\r\n{} \t\r\n",
            #"{"a":[1,2,{"b":null}],"c":"d"}"#,
            #"{ "a" : [ 1 , 2 ] , "b" : { } }"#,
            #"{"a":1,"a":2}"#,
            #""\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00""#,
            "\"\u{E9}\u{1F600}\u{7F}\"",
            #"{"results":[],"has_more":false,"meta":{"total":0,"page":1,"page_size":30},"next_cursor":null}"#,
        ]
    )
    func accepts(text: String) {
        #expect(validate(Array(text.utf8)))
    }

    @Test(
        arguments: [
            "",
            " ",
            "{",
            "}",
            "[",
            "[1,]",
            "[,1]",
            "[1 2]",
            #"{"a":1,}"#,
            #"{"a"}"#,
            #"{"a":}"#,
            "{a:1}",
            "{1:1}",
            "'a'",
            "01",
            "-01",
            "1.",
            ".5",
            "+1",
            "1e",
            "1e+",
            "-",
            "0x10",
            "tru",
            "truex",
            "nul",
            "NaN",
            "Infinity",
            "\"abc",
            #""a\x""#,
            #""\u12""#,
            #""\u12G4""#,
            "\"a\nb\"",
            "\"a\tb\"",
            "{} {}",
            "[1] x",
            "1 2",
        ]
    )
    func refuses(text: String) {
        #expect(!validate(Array(text.utf8)))
    }

    /// Strings must hold well-formed UTF-8: no stray continuation, overlong form, surrogate or value past U+10FFFF.
    @Test(
        arguments: [
            [0x22, 0xFF, 0x22],
            [0x22, 0x80, 0x22],
            [0x22, 0xC0, 0x80, 0x22],
            [0x22, 0xC1, 0xBF, 0x22],
            [0x22, 0xE0, 0x80, 0x80, 0x22],
            [0x22, 0xED, 0xA0, 0x80, 0x22],
            [0x22, 0xF0, 0x80, 0x80, 0x80, 0x22],
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],
            [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],
            [0x22, 0xE2, 0x82, 0x22],
            [0x22, 0xE2, 0x82],
            [0x22, 0x00, 0x22],
        ] as [[UInt8]]
    )
    func refusesBadBytesInStrings(bytes: [UInt8]) {
        #expect(!validate(bytes))
    }

    @Test(
        arguments: [
            [0x22, 0xC2, 0x80, 0x22],
            [0x22, 0xDF, 0xBF, 0x22],
            [0x22, 0xE0, 0xA0, 0x80, 0x22],
            [0x22, 0xED, 0x9F, 0xBF, 0x22],
            [0x22, 0xEF, 0xBF, 0xBF, 0x22],
            [0x22, 0xF0, 0x90, 0x80, 0x80, 0x22],
            [0x22, 0xF4, 0x8F, 0xBF, 0xBF, 0x22],
        ] as [[UInt8]]
    )
    func acceptsBoundaryUTF8(bytes: [UInt8]) {
        #expect(validate(bytes))
    }

    @Test func nestingUpToTheLimitIsAccepted() {
        let limit = JSONValidator.maximumDepth
        #expect(validate(nested(limit, open: "[", close: "]")))
        #expect(validate(nested(limit - 1, open: #"{"a":"#, close: "}", inner: "{}")))
        #expect(validate(nested(limit - 2, open: "[", close: "]", inner: "[1]")))
    }

    /// A scalar inside `maximumDepth` arrays nests no deeper than an empty array there does.
    @Test func scalarAtTheDeepestLevelIsAccepted() {
        let limit = JSONValidator.maximumDepth
        let emptyAccepted = validate(nested(limit, open: "[", close: "]"))
        let scalarAccepted = validate(nested(limit, open: "[", close: "]", inner: "1"))
        #expect(emptyAccepted)
        #expect(scalarAccepted, "[1] nested in \(limit - 1) arrays (depth \(limit)) should be accepted like [] there")
    }

    @Test func nestingBeyondTheLimitIsRefusedWithoutExhaustingTheStack() {
        let limit = JSONValidator.maximumDepth
        #expect(!validate(nested(limit + 1, open: "[", close: "]")))
        #expect(!validate(nested(limit, open: #"{"a":"#, close: "}", inner: "{}")))
        #expect(!validate(nested(100_000, open: "[", close: "]")))
        #expect(!validate(Array(repeating: UInt8(ascii: "["), count: 100_000)))
        #expect(!validate(nested(100_000, open: #"{"a":"#, close: "}", inner: "0")))
    }

    @Test func acceptsAnySliceOfBytes() {
        let framed = Array("xx{\"a\":1}yy".utf8)
        #expect(JSONValidator.isValid(framed[2..<9]))
        #expect(!JSONValidator.isValid(framed[2..<8]))
        #expect(JSONValidator.isValid("[true]".utf8))
    }
}
