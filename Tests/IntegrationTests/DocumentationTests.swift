import Foundation
import GatewayCore
import Testing

/// The shipped `proxy.conf` and the README must describe the configuration the code reads.
@Suite("proxy.conf and README match the code")
struct DocumentationTests {
    private static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func read(_ name: String) throws -> String {
        try String(contentsOf: Self.root.appendingPathComponent(name), encoding: .utf8)
    }

    @Test func proxyConfSetsEveryKeyToItsDefault() throws {
        let lines = try read("proxy.conf").split(separator: "\n").map(String.init)
        for key in GatewayConfiguration.keys {
            if let value = key.defaultValue {
                #expect(lines.contains("\(key.name)=\(value)"), "proxy.conf lacks \(key.name)=\(value)")
            } else {
                #expect(lines.contains("# \(key.name)="), "proxy.conf lacks a commented \(key.name)")
            }
        }
        let setKeys = lines.filter { !$0.hasPrefix("#") && $0.contains("=") }.map { String($0.prefix { $0 != "=" }) }
        #expect(Set(setKeys).isSubset(of: Set(GatewayConfiguration.keys.map(\.name))), "unknown keys: \(setKeys)")
    }

    @Test func theDefaultsInProxyConfAreAValidConfiguration() throws {
        var values: [String: String] = ["ELEVENLABS_API_KEY": "k"]
        for line in try read("proxy.conf").split(separator: "\n") where !line.hasPrefix("#") && line.contains("=") {
            let parts = line.split(separator: "=", maxSplits: 1)
            values[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        #expect(throws: Never.self) { _ = try GatewayConfiguration { values[$0] } }
    }

    @Test func theReadmeDocumentsEveryKeyWithItsDefault() throws {
        let readme = try read("README.md")
        for key in GatewayConfiguration.keys {
            let row = key.defaultValue.map { "| `\(key.name)` | `\($0)` |" } ?? "| `\(key.name)` |"
            #expect(readme.contains(row), "README lacks the row for \(key.name)")
        }
        #expect(readme.contains("make run"))
        #expect(readme.contains("make test"))
    }

    @Test func ciRunsTheReadmesTestCommand() throws {
        let ci = try read(".ci/run")
        #expect(ci.split(separator: "\n").contains("make test"))
    }
}
