import Testing

@testable import GatewayCore

@Suite("JSONText")
struct JSONTextTests {
    /// The byte-at-a-time answer.
    private func needsEscape(_ bytes: [UInt8]) -> Bool {
        bytes.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
    }

    /// Every byte value, at every position of every length up to 24 (so in each lane of a word and in the
    /// tail), among plain bytes, high bytes (UTF-8 of other characters) or bytes just above the limits.
    @Test(arguments: [UInt8(ascii: "a"), 0xC3, 0x20, 0xFF, 0x7F])
    func theWordAtATimeScanFindsWhatTheByteAtATimeScanFinds(filler: UInt8) {
        for length in 1...24 {
            for position in 0..<length {
                for byte in UInt8.min...UInt8.max {
                    var bytes = [UInt8](repeating: filler, count: length)
                    bytes[position] = byte
                    let found = bytes.withUnsafeBufferPointer { JSONText.containsEscaped($0) }
                    guard found == needsEscape(bytes) else {
                        Issue.record("byte \(byte) at \(position) of \(length) among \(filler): \(found)")
                        return
                    }
                }
            }
        }
    }

    @Test func aQuotedStringIsEscapedWhereverItsSpecialBytesAre() {
        for text in ["plain/path?agent_id=a&page_size=30", "0123456\"", "01234567\\", "0123456789\n", "é😀\u{1F}x"] {
            var output: [UInt8] = []
            JSONText.appendQuoted(text, to: &output)
            #expect(String(decoding: output, as: UTF8.self) == JSONText.quoted(text))
        }
        #expect(JSONText.quoted("0123456\"") == #""0123456\"""#)
    }
}
