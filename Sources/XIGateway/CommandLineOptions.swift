/// What the command line asked for: `xi-gateway [--config FILE] | --help | --version`, or one of the token
/// subcommands.
import GatewayCore

enum CommandLineOptions: Equatable {
    case run(configFile: String?)
    /// Reads the configuration as `run` does and prints every setting in force, then `configuration ok`.
    case checkConfig(configFile: String?)
    /// `expires`: the moment the token ends, as `YYYY-MM-DDTHH:MM:SSZ`.
    case newToken(team: String, expires: String?)
    /// Reads a token on standard input; with a team, prints its `CLIENTS_FILE` line, without, its digest.
    case hashToken(team: String?)
    case help
    case version

    static let usage = """
        Usage: xi-gateway [--config FILE]
               xi-gateway check-config [--config FILE]
                                             read the configuration as a start would, print every setting
                                             in force (secrets redacted), then "configuration ok"; exit 78
                                             on a bad value. Opens no socket, contacts nobody
               xi-gateway new-token TEAM [--expires YYYY-MM-DDTHH:MM:SSZ]
                                             print a new token for TEAM, once, and its CLIENTS_FILE line
                                             (refused from the given UTC time on)
               xi-gateway hash-token TEAM    read a token on standard input, print its CLIENTS_FILE line
               xi-gateway hash-token         read a token on standard input, print its SHA-256 (hexadecimal)

        A caching gateway for GET /v1/convai/test-invocations.

        Options:
          --config FILE   read settings from FILE (default: ./proxy.conf when present);
                          environment variables override the file
          --version       print the version
          --help          print this help
        """

    /// Parses `arguments` (without the program name).
    static func parse(_ arguments: [String]) throws(UsageError) -> CommandLineOptions {
        if arguments.first == "new-token" {
            var operands: [String] = []
            var expires: String?
            var rest = arguments.dropFirst()
            while let argument = rest.popFirst() {
                if argument == "--expires" || argument.hasPrefix("--expires=") {
                    let value =
                        argument == "--expires" ? rest.popFirst() : String(argument.dropFirst("--expires=".count))
                    guard let value, TeamRegistry.moment(value) != nil else {
                        throw UsageError(message: "--expires wants a UTC time as YYYY-MM-DDTHH:MM:SSZ")
                    }
                    expires = value
                } else {
                    operands.append(argument)
                }
            }
            guard operands.count == 1, let team = operands.first else {
                throw UsageError(message: "new-token takes one team name (and --expires TIME)")
            }
            try checkTeamName(team, command: "new-token")
            return .newToken(team: team, expires: expires)
        }
        if let command = arguments.first, command == "hash-token" {
            let operands = arguments.dropFirst()
            if command == "hash-token", operands.isEmpty { return .hashToken(team: nil) }
            guard operands.count == 1, let team = operands.first else {
                throw UsageError(message: "hash-token takes at most one team name")
            }
            try checkTeamName(team, command: command)
            return .hashToken(team: team)
        }
        var configFile: String?
        var index = 0
        var check = false
        if arguments.first == "check-config" {
            check = true
            index = 1
        }
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
        return check ? .checkConfig(configFile: configFile) : .run(configFile: configFile)
    }

    /// Refuses what cannot name a team on the command line. A leading `-` is refused although a
    /// `CLIENTS_FILE` may hold such a name: `new-token --help` reads as a request for help, and minting a
    /// token for a team called `--help` would surprise whoever typed it.
    private static func checkTeamName(_ team: String, command: String) throws(UsageError) {
        guard !team.hasPrefix("-") else {
            throw UsageError(
                message:
                    "\(command) takes no such option; '\(team)' is not a team name (a team name does not begin with -)"
            )
        }
        guard TeamRegistry.isValidName(team) else {
            throw UsageError(message: "a team name is 1 to 64 of A-Z a-z 0-9 . _ -")
        }
    }

    /// A command line that cannot be run, with what to say about it.
    struct UsageError: Error {
        let message: String
    }
}
