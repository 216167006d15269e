import Configuration
import GatewayCore
import SystemPackage

/// Reads the settings: the process environment first, then the configuration file, through
/// swift-configuration, and hands the values to ``GatewayConfiguration`` to validate.
enum ConfigurationLoader {
    /// The file read when `--config` is not given, if it exists.
    static let defaultFile = "proxy.conf"

    /// A loaded configuration, the teams of its `CLIENTS_FILE`, and what in the file looked wrong without
    /// stopping start-up.
    struct Loaded {
        var configuration: GatewayConfiguration
        var teams: TeamRegistry?
        var warnings: [String]
    }

    /// Loads and validates; `explicitFile` must exist, the default file may be missing.
    static func load(explicitFile: String?, environment: [String: String]) async throws -> Loaded {
        let path = explicitFile ?? defaultFile
        let warnings = try check(path: path, mustExist: explicitFile != nil)
        let secrets = SecretsSpecifier<String, String>.specific(["ELEVENLABS_API_KEY"])
        let fileProvider: EnvironmentVariablesProvider
        do {
            fileProvider = try await EnvironmentVariablesProvider(
                environmentFilePath: FilePath(path),
                allowMissing: explicitFile == nil,
                secretsSpecifier: secrets
            )
        } catch {
            throw LoadError(message: "cannot read the configuration file \(path): \(error)")
        }
        // An empty environment variable (an unset compose variable, say) does not hide the file's value.
        let environment = environment.filter { !$0.value.isEmpty }
        let reader = ConfigReader(providers: [
            EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: secrets),
            fileProvider,
        ])
        let configuration = try GatewayConfiguration { name in
            reader.string(forKey: ConfigKey(name), isSecret: name == "ELEVENLABS_API_KEY" || name == "ADMIN_TOKEN")
        }
        var teams: TeamRegistry?
        if let clientsFile = configuration.clientsFile {
            let text: String
            do {
                text = try readText(path: clientsFile)
            } catch {
                throw LoadError(message: "CLIENTS_FILE: cannot read \(clientsFile): \(error)")
            }
            teams = try TeamRegistry(parsing: text, source: clientsFile)
        }
        return Loaded(configuration: configuration, teams: teams, warnings: warnings)
    }

    /// The whole file at `path`, as UTF-8.
    static func readText(path: String) throws -> String {
        let descriptor = try FileDescriptor.open(FilePath(path), .readOnly)
        defer { try? descriptor.close() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = try chunk.withUnsafeMutableBytes { try descriptor.read(into: $0) }
            if count == 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// What swift-configuration's reader would pass over in silence: Windows line endings (the whole file
    /// would read as one line) are an error; a key the gateway does not know (a typo) is a warning.
    static func check(path: String, mustExist: Bool) throws -> [String] {
        let text: String
        do {
            text = try readText(path: path)
        } catch Errno.noSuchFileOrDirectory where !mustExist {
            return []
        } catch {
            throw LoadError(message: "cannot read the configuration file \(path): \(error)")
        }
        guard !text.utf8.contains(UInt8(ascii: "\r")) else {
            throw LoadError(
                message: "the configuration file \(path) has Windows (CRLF) line endings; convert it, "
                    + "for example with dos2unix"
            )
        }
        let known = Set(GatewayConfiguration.keys.map(\.name))
        var warnings: [String] = []
        for line in text.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard !trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") else { continue }
            let name = String(trimmed[..<equals]).trimmingCharacters(of: [" ", "\t"])
            if !name.isEmpty, !known.contains(name) {
                warnings.append("\(path): unknown key \(name) is ignored")
            }
        }
        return warnings
    }

    struct LoadError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}

extension String {
    fileprivate func trimmingCharacters(of set: Set<Character>) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text.removeFirst() }
        while let last = text.last, set.contains(last) { text.removeLast() }
        return String(text)
    }
}
