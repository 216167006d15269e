/// The command line, parsed by swift-argument-parser: `xi-gateway [run] [--config FILE]`, `check-config`,
/// `new-token` and `hash-token`, each with `--help`, and `--version`.
import ArgumentParser
import GatewayCore
import GatewayServer

@main
struct XIGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xi-gateway",
        abstract: "A caching gateway for GET /v1/convai/test-invocations.",
        discussion: """
            With no subcommand, runs the gateway: `xi-gateway --config FILE` is `xi-gateway run --config FILE`.
            Settings come from the file (default: ./proxy.conf when present); environment variables override it.
            """,
        version: "xi-gateway \(GatewayVersion.current)",
        subcommands: [Run.self, CheckConfig.self, NewToken.self, HashToken.self],
        defaultSubcommand: Run.self
    )
}

/// Where the settings come from: the option `run` and `check-config` share.
struct ConfigurationOption: ParsableArguments {
    @Option(
        name: .customLong("config"),
        help: ArgumentHelp(
            "Read settings from this file (default: ./proxy.conf when present); environment variables override it.",
            valueName: "FILE"
        )
    )
    var file: String?
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway until SIGTERM or SIGINT; SIGHUP reloads the configuration."
    )

    @OptionGroup var configuration: ConfigurationOption

    func run() async {
        await XIGateway.run(configFile: configuration.file)
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Read the configuration as a start would and print every setting in force.",
        discussion: """
            Secrets are printed as <redacted>, then "configuration ok" (exit 0). A bad value prints the same \
            one-line error as a start and exits 78. Opens no socket and contacts nobody.
            """
    )

    @OptionGroup var configuration: ConfigurationOption

    func run() async {
        await XIGateway.checkConfig(configFile: configuration.file)
    }
}

struct NewToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-token",
        abstract: "Print a new token for TEAM, once, and its CLIENTS_FILE line."
    )

    @Argument(help: "The team's name: 1 to 64 of A-Z a-z 0-9 . _ -, not beginning with -.")
    var team: String

    @Option(
        help: ArgumentHelp(
            "Refuse the token from this UTC time on (the line ends with expires=TIME).",
            valueName: "YYYY-MM-DDTHH:MM:SSZ"
        )
    )
    var expires: String?

    func validate() throws {
        try TeamNameCheck.check(team, command: "new-token")
        if let expires, TeamRegistry.moment(expires) == nil {
            throw ValidationError("--expires wants a UTC time as YYYY-MM-DDTHH:MM:SSZ, got '\(expires)'")
        }
    }

    func run() {
        // 32 random bytes from the system's generator, as hexadecimal.
        var generator = SystemRandomNumberGenerator()
        let token = "xgt_" + (0..<4).map { _ in hex(generator.next()) }.joined()
        print("token (shown once; give it to the team): \(token)")
        print("line for CLIENTS_FILE:")
        print(TeamRegistry.line(team: team, token: token) + (expires.map { "  expires=\($0)" } ?? ""))
    }

    private func hex(_ value: UInt64) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}

struct HashToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-token",
        abstract: "Read a token on standard input; print its CLIENTS_FILE line for TEAM, or without TEAM its SHA-256."
    )

    @Argument(help: "The team the token is for.")
    var team: String?

    func validate() throws {
        if let team { try TeamNameCheck.check(team, command: "hash-token") }
    }

    func run() throws {
        guard let token = readLine(strippingNewline: true)?.trimmingASCIIWhitespace, !token.isEmpty else {
            XIGateway.printError("xi-gateway: hash-token reads the token on standard input")
            throw ExitCode(64)
        }
        if let team {
            print(TeamRegistry.line(team: team, token: token))
        } else {
            print(SHA256.hexDigest(token.utf8))
        }
    }
}

/// Refuses what cannot name a team on the command line. A leading `-` is refused although a `CLIENTS_FILE`
/// may hold such a name: minting a token for a team called `--help` would surprise whoever typed it.
enum TeamNameCheck {
    static func check(_ team: String, command: String) throws(ValidationError) {
        guard !team.hasPrefix("-") else {
            throw ValidationError("'\(team)' is not a team name (a team name does not begin with -)")
        }
        guard TeamRegistry.isValidName(team) else {
            throw ValidationError("a team name is 1 to 64 of A-Z a-z 0-9 . _ -, got '\(team)'")
        }
    }
}

extension String {
    fileprivate var trimmingASCIIWhitespace: String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" || first == "\r" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\r" { text.removeLast() }
        return String(text)
    }
}
