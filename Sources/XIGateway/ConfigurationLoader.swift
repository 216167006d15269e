import Configuration
import GatewayCore
import SystemPackage

/// Reads the settings: the process environment first, then the configuration file, through
/// swift-configuration, and hands the values to ``GatewayConfiguration`` to validate.
enum ConfigurationLoader {
    /// The file read when `--config` is not given, if it exists.
    static let defaultFile = "proxy.conf"

    /// Loads and validates; `explicitFile` must exist, the default file may be missing.
    static func load(
        explicitFile: String?,
        environment: [String: String]
    ) async throws -> GatewayConfiguration {
        let secrets = SecretsSpecifier<String, String>.specific(["ELEVENLABS_API_KEY"])
        let fileProvider: EnvironmentVariablesProvider
        do {
            fileProvider = try await EnvironmentVariablesProvider(
                environmentFilePath: FilePath(explicitFile ?? defaultFile),
                allowMissing: explicitFile == nil,
                secretsSpecifier: secrets
            )
        } catch {
            throw LoadError(message: "cannot read the configuration file \(explicitFile ?? defaultFile): \(error)")
        }
        let reader = ConfigReader(providers: [
            EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: secrets),
            fileProvider,
        ])
        return try GatewayConfiguration { name in
            reader.string(forKey: ConfigKey(name), isSecret: name == "ELEVENLABS_API_KEY")
        }
    }

    struct LoadError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
