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

    /// The image sets only keys the gateway reads, to values it takes, and exposes the ports they name.
    /// The `ENV` settings of a Dockerfile (`ENV A=1 B=2`, continued over lines ending in `\`).
    static func environmentSettings(ofDockerfile dockerfile: String) -> [String: String] {
        let lines = dockerfile.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        var settings: [String: String] = [:]
        var inEnv = false
        for line in lines {
            guard inEnv || line.hasPrefix("ENV ") else { continue }
            let text = (line.hasPrefix("ENV ") ? String(line.dropFirst(4)) : line).replacingOccurrences(
                of: " \\",
                with: ""
            )
            for pair in text.split(separator: " ") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { settings[parts[0]] = parts[1] }
            }
            inEnv = line.hasSuffix("\\")
        }
        return settings
    }

    @Test func theDockerfileSetsKnownKeysAndExposesTheirPorts() throws {
        let dockerfile = try read("Dockerfile")
        let settings = Self.environmentSettings(ofDockerfile: dockerfile)
        #expect(settings == ["LISTEN_HOST": "0.0.0.0", "LISTEN_PORT": "8080", "ADMIN_LISTEN": "0.0.0.0:9091"])
        #expect(Set(settings.keys).isSubset(of: Set(GatewayConfiguration.keys.map(\.name))))
        let configuration = try GatewayConfiguration { settings[$0] ?? ($0 == "ELEVENLABS_API_KEY" ? "k" : nil) }
        let exposed = dockerfile.split(separator: "\n").first { $0.hasPrefix("EXPOSE ") }?.split(separator: " ")
            .dropFirst().compactMap { Int($0) }
        #expect(exposed == [configuration.listenPort] + [configuration.adminListen?.port].compactMap { $0 })
        #expect(dockerfile.contains("USER 10001:10001"))
    }

    @Test func ciRunsTheReadmesTestCommand() throws {
        let ci = try read(".ci/run")
        #expect(ci.split(separator: "\n").contains("make test"))
    }
}
