/// What the command line asked for: `xi-gateway [--config FILE] | --help | --version`.
enum CommandLineOptions: Equatable {
    case run(configFile: String?)
    case help
    case version

    static let usage = """
        Usage: xi-gateway [--config FILE]

        A caching gateway for GET /v1/convai/test-invocations.

        Options:
          --config FILE   read settings from FILE (default: ./proxy.conf when present);
                          environment variables override the file
          --version       print the version
          --help          print this help
        """

    /// Parses `arguments` (without the program name).
    static func parse(_ arguments: [String]) throws(UsageError) -> CommandLineOptions {
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
