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
        let lookup = { (name: String) -> String? in
            reader.string(forKey: ConfigKey(name), isSecret: secretKeys.contains(name))
        }
        var fromFiles: [String: String] = [:]
        for name in secretKeys {
            fromFiles[name] = try secretFromFile(name, lookup: lookup)
        }
        let configuration = try GatewayConfiguration { name in fromFiles[name] ?? lookup(name) }
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

    /// The keys whose values are secrets, each of which may instead be read from the file its `_FILE` key
    /// names (the container convention: a mounted secret).
    static let secretKeys: Set<String> = ["ELEVENLABS_API_KEY", "ADMIN_TOKEN", "REDIS_URL"]

    /// The value of `name` read from the file `name_FILE` names (its trailing newline dropped), or `nil`
    /// when `name_FILE` is not set. Both set is an error, and so is a file that cannot be read; a message
    /// shows the file's path, never what it holds.
    static func secretFromFile(_ name: String, lookup: (String) -> String?) throws(ConfigurationError) -> String? {
        let fileKey = name + "_FILE"
        guard let path = lookup(fileKey)?.trimmingCharacters(of: [" ", "\t"]), !path.isEmpty else { return nil }
        if let direct = lookup(name), !direct.trimmingCharacters(of: [" ", "\t"]).isEmpty {
            throw ConfigurationError(key: fileKey, problem: "and \(name) are both set; set one of them")
        }
        var text: String
        do {
            text = try readText(path: path)
        } catch {
            throw ConfigurationError(key: fileKey, problem: "names \(path), which cannot be read: \(error)")
        }
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        guard !text.isEmpty else {
            throw ConfigurationError(key: fileKey, problem: "names \(path), which is empty")
        }
        return text
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
