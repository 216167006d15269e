import Foundation
import Logging
import Synchronization
import Testing

@testable import GatewayCore

/// The log handler's lines: one JSON object each, with the fields a collector expects, whatever the values
/// hold.
@Suite("Log handler")
struct GatewayLogHandlerTests {
    /// Collects the lines a handler writes.
    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }

        func logger(label: String = "test", format: GatewayLogHandler.Format = .json) -> Logger {
            Logger(label: label) { label in
                GatewayLogHandler(label: label, format: format, control: LogLevelControl(.info)) { line in
                    self.lines.withLock { $0.append(line) }
                }
            }
        }
    }

    /// The line's object, with every value as text: a string as it is, an integer in its digits.
    private static func object(_ line: String) throws -> [String: String] {
        #expect(line.hasSuffix("}\n"))
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        return parsed.mapValues { value in (value as? String) ?? "\(value)" }
    }

    @Test func aLineIsOneJSONObjectWithTimeLevelLabelMessageAndTheMetadata() throws {
        let lines = Lines()
        lines.logger(label: "access").info(
            "request",
            metadata: [
                "status": "200", "path": "/v1/convai/test-invocations?page_size=30", "count": .stringConvertible(7),
            ]
        )
        let line = try #require(lines.all.first)
        #expect(lines.all.count == 1)
        #expect(line.filter { $0 == "\n" }.count == 1)
        let object = try Self.object(line)
        #expect(object["level"] == "info")
        #expect(object["label"] == "access")
        #expect(object["message"] == "request")
        #expect(object["status"] == "200")
        #expect(object["path"] == "/v1/convai/test-invocations?page_size=30")
        #expect(object["count"] == "7")
        #expect(object.count == 7)
    }

    @Test func metadataKeysFollowTheFixedFieldsInSortedOrder() throws {
        let lines = Lines()
        lines.logger().info("m", metadata: ["zeta": "1", "alpha": "2", "mid": "3"])
        let line = try #require(lines.all.first)
        let order = ["\"time\"", "\"level\"", "\"label\"", "\"message\"", "\"alpha\"", "\"mid\"", "\"zeta\""]
            .map { line.range(of: $0)?.lowerBound }
        #expect(order.allSatisfy { $0 != nil })
        #expect(order.compactMap { $0 } == order.compactMap { $0 }.sorted())
    }

    @Test func theTimeIsRFC3339InUTCWithMilliseconds() throws {
        let lines = Lines()
        let before = Date()
        lines.logger().info("m")
        let after = Date()
        let line = try #require(lines.all.first)
        let time = try #require(try Self.object(line)["time"])
        #expect(time.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let parsed = try #require(formatter.date(from: time))
        #expect(parsed >= before.addingTimeInterval(-0.001) && parsed <= after.addingTimeInterval(0.001))
    }

    @Test(arguments: [
        "plain", "quote \" and backslash \\", "line\nbreak and\r\ncarriage", "tab\there", "\u{08}\u{0C}",
        "nul \u{00} and escape \u{1B} and unit separator \u{1F}", "non-ASCII: é, 日本, 🎉", "",
        "{\"injected\":\"field\"}", "\u{7F} delete",
    ])
    func anyValueRoundTripsThroughTheLineExactly(value: String) throws {
        let lines = Lines()
        lines.logger().info("\(value)", metadata: ["value": .string(value)])
        let line = try #require(lines.all.first)
        #expect(line.filter { $0 == "\n" }.count == 1, "a value never breaks the line")
        let object = try Self.object(line)
        #expect(object["value"] == value)
        #expect(object["message"] == value)
        #expect(object["injected"] == nil)
    }

    @Test func appendingAQuotedStringWritesWhatQuotedReturns() {
        var samples = ["", "a", "\"", "\\", "\n\r\t\u{08}\u{0C}", "é日🎉", "x\u{01}y\u{1F}z"]
        samples += (0..<128).map { String(UnicodeScalar(UInt8($0))) }
        for sample in samples {
            var bytes: [UInt8] = []
            JSONText.appendQuoted(sample, to: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == JSONText.quoted(sample), "\(sample.debugDescription)")
        }
    }

    /// Numbers are written digit by digit, as JSON numbers (unquoted); text as the generic path quotes it.
    @Test func numbersAreWrittenAsJSONNumbersAndTextAsStrings() {
        let integers = [0, 9, 10, 99, 100, 10_107, Int.max, -1, -10, Int.min]
        let durations: [UInt64] = [0, 999, 1_000, 9_999, 10_000, 1_234_567, 50_000_999, UInt64.max]
        let values =
            integers.map(AccessLogEntry.FieldValue.integer) + durations.map(AccessLogEntry.FieldValue.milliseconds)
            + [.text("a\"b")]
        for value in values {
            var bytes: [UInt8] = []
            value.appendJSON(to: &bytes)
            let expected: String
            if case .text = value { expected = JSONText.quoted(value.text) } else { expected = value.text }
            #expect(String(decoding: bytes, as: UTF8.self) == expected, "\(value)")
        }
        #expect(AccessLogEntry.FieldValue.integer(Int.min).text == "-9223372036854775808")
        #expect(AccessLogEntry.FieldValue.milliseconds(UInt64.max).text == "18446744073709.551")
    }

    @Test func textLinesNameTheLevelTheLabelAndThePairs() throws {
        let lines = Lines()
        lines.logger(label: "gw", format: .text).warning("careful", metadata: ["b": "2", "a": "1"])
        let line = try #require(lines.all.first)
        #expect(line.hasSuffix(" warning gw: careful a=1 b=2\n"))
    }

    private static let entries: [AccessLogEntry] = [
        AccessLogEntry(
            requestID: "1a2b-7",
            client: "127.0.0.1",
            method: "GET",
            path: "/v1/convai/test-invocations?page_size=30",
            status: 200,
            cache: "hit",
            nanoseconds: 1_234_567,
            bytes: 10_107
        ),
        AccessLogEntry(
            requestID: "id\"with\\quotes",
            client: "::1",
            method: "POST",
            path: "/x?a=\r\nb\u{0}\u{7F}\u{E9}\u{1F600}",
            status: 504,
            cache: "miss",
            nanoseconds: 7,
            bytes: 0,
            team: "team \"a\"",
            upstreamStatus: 429,
            upstreamNanoseconds: 50_000_999
        ),
    ]

    /// The access log's own path writes the very line the generic one writes for the same fields: only
    /// the time may differ.
    @Test(arguments: entries)
    func anAccessLineIsTheLineOfItsMetadata(entry: AccessLogEntry) throws {
        let lines = Lines()
        let handler = try #require(lines.logger(label: "access").handler as? GatewayLogHandler)
        #expect(handler.logsAccessDirectly)

        handler.logAccess(entry)
        lines.logger(label: "access").info(AccessLogEntry.message, metadata: entry.metadata)

        let written = lines.all.map { $0.replacing(/"time":"[^"]*"/, with: "") }
        #expect(written.count == 2)
        #expect(written.first == written.last)
        let object = try Self.object(try #require(lines.all.first))
        #expect(object["request_id"] == entry.requestID)
        #expect(object["path"] == entry.path)
        #expect(object["team"] == entry.team)
        #expect(object["status"] == String(entry.status))
        #expect(object["upstream_status"] == entry.upstreamStatus.map(String.init))
        // Numbers are JSON numbers, on both paths.
        let line = try #require(lines.all.first)
        #expect(line.contains("\"status\":\(entry.status)"))
        #expect(line.contains("\"bytes\":\(entry.bytes),"))
        #expect(line.firstMatch(of: /"duration_ms":\d+\.\d{3},/) != nil)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(parsed["status"] as? Int == entry.status)
    }

    @Test func durationsAreMillisecondsWithThreeDecimals() throws {
        let lines = Lines()
        let handler = try #require(lines.logger().handler as? GatewayLogHandler)
        for (nanoseconds, text) in [
            (0, "0.000"), (1_000, "0.001"), (12_000, "0.012"), (1_234_567, "1.234"), (50_000_999, "50.000"),
        ] {
            var entry = Self.entries[0]
            entry.nanoseconds = UInt64(nanoseconds)
            handler.logAccess(entry)
            #expect(try #require(lines.all.last).contains("\"duration_ms\":\(text),"), "a JSON number")
        }
    }

    @Test func anAccessLineFollowsTheLevel() throws {
        let lines = Lines()
        var logger = lines.logger()
        logger.logLevel = .warning
        let handler = try #require(logger.handler as? GatewayLogHandler)

        handler.logAccess(Self.entries[0])
        #expect(lines.all.isEmpty)

        logger.logLevel = .info
        handler.logAccess(Self.entries[0])
        #expect(lines.all.count == 1)
    }

    /// With metadata of the logger's own, or as text, the line is the generic one, with everything.
    @Test func anAccessLineWithTheLoggersOwnMetadataOrAsTextTakesTheGenericPath() throws {
        let lines = Lines()
        var logger = lines.logger()
        logger[metadataKey: "instance"] = "blue"
        let handler = try #require(logger.handler as? GatewayLogHandler)
        #expect(!handler.logsAccessDirectly)
        handler.logAccess(Self.entries[0])
        #expect(try Self.object(try #require(lines.all.last))["instance"] == "blue")

        let text = try #require(lines.logger(format: .text).handler as? GatewayLogHandler)
        #expect(!text.logsAccessDirectly)
        text.logAccess(Self.entries[0])
        #expect(try #require(lines.all.last).contains(" status=200"))
    }

    /// A handler writing to a ``BufferedOutput`` builds its lines in the output's own bytes: they are the
    /// lines a handler writing strings hands over, for access lines, other lines and text lines alike.
    @Test func linesBuiltInTheOutputAreTheLinesHandedOver() throws {
        var descriptors: [Int32] = [0, 0]
        #expect(pipe(&descriptors) == 0)
        defer {
            close(descriptors[0])
            close(descriptors[1])
        }
        let output = BufferedOutput(descriptor: descriptors[1])
        let lines = Lines()
        for format in [GatewayLogHandler.Format.json, .text] {
            let buffered = GatewayLogHandler(label: "access", format: format, output: output)
            let handed = try #require(lines.logger(label: "access", format: format).handler as? GatewayLogHandler)
            for entry in Self.entries {
                buffered.logAccess(entry)
                handed.logAccess(entry)
            }
            for handler in [buffered, handed] {
                Logger(label: "access") { _ in handler }.warning(
                    "other \"line\"",
                    metadata: ["value": "a\nb", "count": .stringConvertible(3)]
                )
            }
        }
        output.flush()
        var bytes = [UInt8](repeating: 0, count: 1 << 16)
        let count = bytes.withUnsafeMutableBytes { read(descriptors[0], $0.baseAddress, $0.count) }
        let written = String(decoding: bytes[..<max(0, count)], as: UTF8.self)
        let withoutTimes = { (text: String) in
            text.replacing(/"time":"[^"]*"/, with: "").replacing(/\d{4}-\d{2}-\d{2}T[\d:.]+Z/, with: "")
        }
        #expect(lines.all.count == 2 * (Self.entries.count + 1))
        #expect(withoutTimes(written) == withoutTimes(lines.all.joined()))
    }

    /// The calendar part of the time is worked out once a second on each thread: whatever the order of the
    /// seconds asked for, the text is the calendar's.
    @Test func theTimeOfEverySecondIsTheCalendars() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        let seconds = [
            0, 951_782_400, 951_782_399, 1_764_374_399, 1_764_374_400, 1_764_374_400, 1_764_374_401, 4_102_444_800,
            1_709_164_800, 1_709_164_800, 0,
        ]
        for (index, second) in seconds.enumerated() {
            let milliseconds = (index * 137) % 1000
            var bytes: [UInt8] = []
            GatewayLogHandler.appendTimestamp(seconds: second, milliseconds: milliseconds, to: &bytes)
            let expected = formatter.string(
                from: Date(timeIntervalSince1970: Double(second) + Double(milliseconds) / 1000 + 0.0001)
            )
            #expect(String(decoding: bytes, as: UTF8.self) == expected, "\(second)")
        }
    }
}
