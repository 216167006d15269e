/// What the command line asked for: `xi-gateway [--config FILE] | --help | --version`.
import GatewayCore

enum CommandLineOptions: Equatable {
    case run(configFile: String?)
    case newToken(team: String)
    case hashToken(team: String)
    case help
    case version

    static let usage = """
        Usage: xi-gateway [--config FILE]
               xi-gateway new-token TEAM     print a new token for TEAM, once, and its CLIENTS_FILE line
               xi-gateway hash-token TEAM    read a token on standard input, print its CLIENTS_FILE line

        A caching gateway for GET /v1/convai/test-invocations.

        Options:
          --config FILE   read settings from FILE (default: ./proxy.conf when present);
                          environment variables override the file
          --version       print the version
          --help          print this help
        """

    /// Parses `arguments` (without the program name).
    static func parse(_ arguments: [String]) throws(UsageError) -> CommandLineOptions {
        if let command = arguments.first, command == "new-token" || command == "hash-token" {
            guard arguments.count == 2 else { throw UsageError(message: "\(command) takes one team name") }
            guard TeamRegistry.isValidName(arguments[1]) else {
                throw UsageError(message: "a team name is 1 to 64 of A-Z a-z 0-9 . _ -")
            }
            return command == "new-token" ? .newToken(team: arguments[1]) : .hashToken(team: arguments[1])
        }
        var configFile: String?
        var index = 0
        while index < arguments.count {
            switch arguments[index] {
            case "--help", "-h": return .help
            case "--version": return .version
            case "--config":
                guard index + 1 < arguments.count else { throw UsageError(message: "--config needs a file") }
                configFile = arguments[index + 1]
                index += 2
            case let argument where argument.hasPrefix("--config="):
                configFile = String(argument.dropFirst("--config=".count))
                index += 1
            case let argument:
                throw UsageError(message: "unknown argument '\(argument)'")
            }
        }
        return .run(configFile: configFile)
    }

    struct UsageError: Error {
        let message: String
    }
}
