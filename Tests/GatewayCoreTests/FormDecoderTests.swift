import Testing

@testable import GatewayCore

/// The decoded pairs as `[name, value]` arrays, which are comparable.
private func decode(_ query: String) throws(FormDecoder.Failure) -> [[String]] {
    try FormDecoder.decode(query[...]).map { [$0.name, $0.value] }
}

@Suite("FormDecoder: parse_qsl(keep_blank_values=True), strict about escapes")
struct FormDecoderTests {
    @Test(
        arguments: [
            ("", [[String]]()),
            ("a=1", [["a", "1"]]),
            ("a=1&b=2", [["a", "1"], ["b", "2"]]),
            ("&&a=1&&b=2&", [["a", "1"], ["b", "2"]]),
            ("&", []),
            ("a", [["a", ""]]),
            ("a=", [["a", ""]]),
            ("=x", [["", "x"]]),
            ("=", [["", ""]]),
            ("a=b=c", [["a", "b=c"]]),
            ("a==", [["a", "="]]),
            ("a=1;b=2", [["a", "1;b=2"]]),
            ("a+b=c+d", [["a b", "c d"]]),
            ("a=++", [["a", "  "]]),
            ("%61=%62", [["a", "b"]]),
            ("x=%2B", [["x", "+"]]),
            ("x=%2b", [["x", "+"]]),
            ("x=%26%3D", [["x", "&="]]),
            ("x=%25", [["x", "%"]]),
            ("x=%2541", [["x", "%41"]]),
            ("x=%C3%A9", [["x", "\u{E9}"]]),
            ("x=%c3%a9", [["x", "\u{E9}"]]),
            ("x=%F0%9F%98%80", [["x", "\u{1F600}"]]),
            ("x=%00%0A%7F", [["x", "\u{0}\n\u{7F}"]]),
            ("a=1&a=2", [["a", "1"], ["a", "2"]]),
            ("b=2&a=1", [["b", "2"], ["a", "1"]]),
            ("x=a/b?c:d@e!f$g'h(i)j*k,l", [["x", "a/b?c:d@e!f$g'h(i)j*k,l"]]),
        ]
    )
    func decodes(query: String, pairs: [[String]]) throws {
        #expect(try decode(query) == pairs)
    }

    @Test(
        arguments: [
            ("%", FormDecoder.Failure.badEscape),
            ("a=%", .badEscape),
            ("a=%4", .badEscape),
            ("a=%zz", .badEscape),
            ("a=%g0", .badEscape),
            ("a=%0g", .badEscape),
            ("a=%%41", .badEscape),
            ("a=% 1", .unencodedByte(0x20)),
            ("a=1&b=%", .badEscape),
            ("%FF", .invalidUTF8),
            ("a=%FF", .invalidUTF8),
            ("a=%C3", .invalidUTF8),
            ("a=%C3%28", .invalidUTF8),
            ("a=%80", .invalidUTF8),
            ("a=%C0%80", .invalidUTF8),
            ("a=%ED%A0%80", .invalidUTF8),
            ("a=%F4%90%80%80", .invalidUTF8),
            ("a=b c", .unencodedByte(0x20)),
            ("a=\u{0}", .unencodedByte(0x00)),
            ("a=\n", .unencodedByte(0x0A)),
            ("a=\u{7F}", .unencodedByte(0x7F)),
            ("a=\u{E9}", .unencodedByte(0xC3)),
            ("\u{E9}=a", .unencodedByte(0xC3)),
        ]
    )
    func refuses(query: String, failure: FormDecoder.Failure) {
        #expect(throws: failure) { try decode(query) }
    }

    @Test func failuresDescribeTheProblem() {
        #expect(FormDecoder.Failure.badEscape.description.contains("%"))
        #expect(FormDecoder.Failure.invalidUTF8.description.contains("UTF-8"))
        #expect(FormDecoder.Failure.unencodedByte(0x7F).description.contains("0x7F"))
    }

    @Test func decodesASubstringInPlace() throws {
        let target = "/v1/convai/test-invocations?agent_id=a%20b&page_size=5"
        let query = try #require(target.split(separator: "?", maxSplits: 1).last)
        let pairs = try FormDecoder.decode(query)
        #expect(pairs.map(\.name) == ["agent_id", "page_size"])
        #expect(pairs.map(\.value) == ["a b", "5"])
    }
}
