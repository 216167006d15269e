/// The teams allowed to use the gateway, from `CLIENTS_FILE`: one a line, a name, the SHA-256 of the
/// team's token (hexadecimal), and optional settings:
///
///     # name     sha256(token)                                                      settings
///     team-a     9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08   upstream_per_minute=120
///
/// Tokens themselves are never stored. A token is recognised by the digest of what the client sends, so
/// looking it up takes the same time whatever the token is.
public struct TeamRegistry: Sendable {
    /// One team.
    public struct Team: Sendable, Hashable {
        /// The name: 1 to 64 of `A-Z a-z 0-9 . _ -`; used in metrics and logs.
        public var name: String
        /// The most upstream requests per minute the team's requests may cause; `nil`: the default.
        public var upstreamPerMinute: Int?

        /// Creates a team.
        public init(name: String, upstreamPerMinute: Int?) {
            self.name = name
            self.upstreamPerMinute = upstreamPerMinute
        }
    }

    private var teamsByDigest: [[UInt8]: Team] = [:]

    /// Every team, in file order.
    public private(set) var teams: [Team] = []

    /// An empty registry (nobody is let in).
    public init() {}

    /// Parses the file's text; `source` names it in errors.
    public init(parsing text: String, source: String) throws(ConfigurationError) {
        var names: Set<String> = []
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard !fields.isEmpty else { continue }
            func failure(_ problem: String) -> ConfigurationError {
                ConfigurationError(key: "CLIENTS_FILE", problem: "\(source) line \(offset + 1): \(problem)")
            }
            guard fields.count >= 2 else { throw failure("wants a team name and the SHA-256 of its token") }
            let name = String(fields[0])
            guard Self.isValidName(name) else {
                throw failure("the team name must be 1 to 64 of A-Z a-z 0-9 . _ -")
            }
            guard names.insert(name).inserted else { throw failure("team \(name) appears twice") }
            guard let digest = Self.digest(fromHex: fields[1]) else {
                throw failure("the token hash must be 64 hexadecimal digits (the SHA-256 of the token)")
            }
            guard teamsByDigest[digest] == nil else { throw failure("two teams have the same token") }
            var team = Team(name: name, upstreamPerMinute: nil)
            for setting in fields.dropFirst(2) {
                let parts = setting.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0] == "upstream_per_minute", let value = Int(parts[1]), value >= 0 else {
                    throw failure("unknown setting \(setting); the one setting is upstream_per_minute=N")
                }
                team.upstreamPerMinute = value
            }
            teamsByDigest[digest] = team
            teams.append(team)
        }
    }

    /// The team whose token is `token`, if any.
    public func team(forToken token: some StringProtocol) -> Team? {
        teamsByDigest[SHA256.hash(token.utf8)]
    }

    /// The line to add to `CLIENTS_FILE` for a team with `token`.
    public static func line(team: String, token: some StringProtocol) -> String {
        "\(team) \(SHA256.hexDigest(token.utf8))"
    }

    /// Whether `name` can name a team.
    public static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    return true
                default:
                    return false
                }
            }
    }

    private static func digest(fromHex text: Substring) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard bytes.count == 64 else { return nil }
        var digest: [UInt8] = []
        digest.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = PercentEncoding.hexValue(bytes[index]),
                let low = PercentEncoding.hexValue(bytes[index + 1])
            else { return nil }
            digest.append(high << 4 | low)
        }
        return digest
    }

}
