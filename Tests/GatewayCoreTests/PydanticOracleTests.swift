import Foundation
import Testing

@testable import GatewayCore

/// One line of `Fixtures/pydantic-integers.jsonl`: what pydantic said of one spelling.
struct OracleCase: Sendable {
    /// The value as a client sends it, form-decoded.
    var input: String
    /// `TypeAdapter(int)`: the value as decimal text, or the error type.
    var integer: Verdict
    /// The endpoint's `page_size` declaration (`int`, `ge=1`, `le=100`).
    var pageSize: Verdict

    enum Verdict: Sendable, Equatable {
        case value(String)
        case error(String)
    }

    /// The input for a failure message, shortened when long.
    var shown: String {
        let text = input.count > 40 ? String(input.prefix(20)) + "…(\(input.utf8.count) bytes)" : input
        return text.debugDescription
    }
}

/// The fixture written by `scripts/pydantic-oracle.py`: its header and its cases.
struct Oracle: Sendable {
    var pydanticVersion: String
    /// Error type (with `:page_size` for the bounded declaration) to pydantic's message and context.
    var errors: [String: (message: String, context: [ValidationIssue.Context])]
    var cases: [OracleCase]

    static let shared = load()

    private static func load() -> Oracle {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/pydantic-integers.jsonl")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            return Oracle(pydanticVersion: "missing: \(url.path)", errors: [:], cases: [])
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)[...]
        guard let headerLine = lines.popFirst(),
            let header = try? JSONSerialization.jsonObject(with: Data(headerLine.utf8)) as? [String: Any],
            let version = header["pydantic"] as? String,
            let errorTable = header["errors"] as? [String: [String: Any]]
        else { return Oracle(pydanticVersion: "unreadable header", errors: [:], cases: []) }

        var errors: [String: (message: String, context: [ValidationIssue.Context])] = [:]
        for (type, detail) in errorTable {
            let context = (detail["ctx"] as? [String: Int] ?? [:]).sorted { $0.key < $1.key }
                .map { ValidationIssue.Context(name: $0.key, value: $0.value) }
            errors[type] = (detail["msg"] as? String ?? "", context)
        }
        let cases = lines.compactMap { line -> OracleCase? in
            guard let row = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Any], row.count == 3,
                let input = row[0] as? String, let integer = verdict(row[1]), let pageSize = verdict(row[2])
            else { return nil }
            return OracleCase(input: input, integer: integer, pageSize: pageSize)
        }
        return Oracle(pydanticVersion: version, errors: errors, cases: cases)
    }

    private static func verdict(_ any: Any) -> OracleCase.Verdict? {
        if let value = any as? String { return .value(value) }
        if let object = any as? [String: String], let type = object["error"] { return .error(type) }
        return nil
    }
}

@Suite("LaxInteger and ListQuery against pydantic's own verdicts (scripts/pydantic-oracle.py)")
struct PydanticOracleTests {
    @Test func theFixtureIsWholeAndFromThePinnedPydantic() {
        let oracle = Oracle.shared
        #expect(oracle.pydanticVersion == "2.14.4")
        #expect(oracle.cases.count >= 5000)
        #expect(oracle.cases.contains { $0.input.utf8.count > LaxInteger.maximumDigits })
        #expect(oracle.errors["int_parsing"] != nil && oracle.errors["less_than_equal:page_size"] != nil)
    }

    // One test per declaration, looping over every case: a parameterised test of 12,000 arguments costs
    // Swift Testing most of a minute in bookkeeping. Each failure names the input. The loops yield now and
    // then, so that under the sanitizers they do not hold a thread of the cooperative pool for long.

    /// `TypeAdapter(int)`: the value, `int_parsing` or `int_parsing_size`.
    @Test func integer() async {
        for (index, oracleCase) in Oracle.shared.cases.enumerated() {
            if index % 500 == 0 { await Task.yield() }
            let expected: LaxInteger.Outcome
            switch oracleCase.integer {
            case .value(let value): expected = .value(value)
            case .error("int_parsing_size"): expected = .tooLong
            case .error: expected = .notAnInteger
            }
            #expect(LaxInteger.parse(oracleCase.input) == expected, "input \(oracleCase.shown)")
        }
    }

    /// The whole query `page_size=<input>` (percent-encoded as a client would send it): the value kept,
    /// or exactly the 422 entry pydantic gives, message and context included.
    @Test func pageSize() async throws {
        for (index, oracleCase) in Oracle.shared.cases.enumerated() {
            if index % 500 == 0 { await Task.yield() }
            let query = "page_size=" + PercentEncoding.encode(oracleCase.input)
            let result = Result { () throws(ListQuery.Failure) -> ListQuery in try ListQuery.parse(query[...]) }
            switch (oracleCase.pageSize, result) {
            case (.value(let value), .success(let parsed)):
                #expect(parsed["page_size"] == value, "input \(oracleCase.shown)")
            case (.error(let type), .failure(.invalid(let issues))):
                let detail = try #require(Oracle.shared.errors[type + ":page_size"])
                let issue = ValidationIssue(
                    type: type,
                    location: ["query", "page_size"],
                    message: detail.message,
                    input: oracleCase.input,
                    context: detail.context
                )
                #expect(issues == [issue], "input \(oracleCase.shown)")
            default:
                Issue.record("input \(oracleCase.shown): pydantic \(oracleCase.pageSize), gateway \(result)")
            }
        }
    }
}
