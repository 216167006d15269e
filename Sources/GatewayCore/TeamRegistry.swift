/// The teams allowed to use the gateway, from `CLIENTS_FILE`: one token a line, a team name, the SHA-256
/// of the token (hexadecimal), and optional settings:
///
///     # name     sha256(token)                                                      settings
///     team-a     9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08   upstream_per_minute=120
///     team-a     60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752   expires=2027-01-31T00:00:00Z
///
/// A team may have several lines, one per token (to rotate: add the new token's line, hand it out, then let
/// the old one expire or remove it); `upstream_per_minute` is the team's, so its lines must not disagree on
/// it. `expires=` ends a token at that moment (UTC). Tokens themselves are never stored. A token is
/// recognised by the digest of what the client sends, so looking it up takes the same time whatever the
/// token is.
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

    /// A token's team and the moment it ends (seconds since 1970), if it does.
    private struct Credential: Sendable {
        var team: Int
        var expiresAt: Int?
    }

    private var credentialsByDigest: [[UInt8]: Credential] = [:]

    /// Every team, in the order of its first line.
    public private(set) var teams: [Team] = []

    /// An empty registry (nobody is let in).
    public init() {}

    /// Parses the file's text; `source` names it in errors.
    public init(parsing text: String, source: String) throws(ConfigurationError) {
        var indexByName: [String: Int] = [:]
        /// The line that set each team's budget, for a message about a line that disagrees.
        var budgetLines: [Int: Int] = [:]
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
            guard let digest = Self.digest(fromHex: fields[1]) else {
                throw failure("the token hash must be 64 hexadecimal digits (the SHA-256 of the token)")
            }
            guard credentialsByDigest[digest] == nil else { throw failure("a token appears twice") }
            var perMinute: Int?
            var expiresAt: Int?
            for setting in fields.dropFirst(2) {
                let parts = setting.split(separator: "=", maxSplits: 1)
                switch (parts.count == 2 ? parts[0] : "", parts.count == 2 ? parts[1] : "") {
                case ("upstream_per_minute", let value):
                    // The same bound as CLIENT_UPSTREAM_PER_MINUTE's.
                    guard let number = Int(value), (0...1_000_000).contains(number) else {
                        throw failure("upstream_per_minute wants an integer from 0 to 1000000, got \(value)")
                    }
                    perMinute = number
                case ("expires", let value):
                    guard let moment = Self.moment(value) else {
                        throw failure("expires wants a UTC time as YYYY-MM-DDTHH:MM:SSZ, got \(value)")
                    }
                    expiresAt = moment
                default:
                    throw failure("unknown setting \(setting); the settings are upstream_per_minute=N and expires=TIME")
                }
            }
            let index: Int
            if let known = indexByName[name] {
                index = known
            } else {
                index = teams.count
                indexByName[name] = index
                teams.append(Team(name: name, upstreamPerMinute: nil))
            }
            if let perMinute {
                if let set = teams[index].upstreamPerMinute, set != perMinute {
                    throw failure(
                        "team \(name) has upstream_per_minute=\(set) on line \(budgetLines[index] ?? 0) and "
                            + "\(perMinute) here; a team has one budget"
                    )
                }
                teams[index].upstreamPerMinute = perMinute
                budgetLines[index] = offset + 1
            }
            credentialsByDigest[digest] = Credential(team: index, expiresAt: expiresAt)
        }
    }

    /// The team whose token is `token`, if any and if it has not expired by `now` (seconds since 1970).
    public func team(forToken token: some StringProtocol, now: Int) -> Team? {
        guard let credential = credentialsByDigest[SHA256.hash(token.utf8)] else { return nil }
        if let expiresAt = credential.expiresAt, now >= expiresAt { return nil }
        return teams[credential.team]
    }

    /// How many tokens the file holds (a team may have several).
    public var tokenCount: Int { credentialsByDigest.count }

    /// `YYYY-MM-DDTHH:MM:SSZ` as seconds since 1970, or `nil` when it is not exactly that.
    public static func moment(_ text: some StringProtocol) -> Int? {
        let bytes = Array(text.utf8)
        guard bytes.count == 20, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            bytes[19] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...RetryAfter.daysInMonth(year: year, month: month)).contains(day),
            hour < 24, minute < 60, second < 60
        else { return nil }
        return RetryAfter.daysSinceEpoch(year: year, month: month, day: day) * 86_400 + hour * 3_600 + minute * 60
            + second
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
