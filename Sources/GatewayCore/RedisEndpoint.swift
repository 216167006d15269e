/// Where the shared tier's Redis is, from `REDIS_URL`: `redis://[[user]:password@]host[:port][/db]`, the same
/// over TLS as `rediss://`, or
/// `unix:///path/to/socket[?db=N]` (a password for a socket as `unix://:password@/path`). The password is
/// a ``Secret``: ``description`` shows `redis://***@host:port/db`, never it.
public struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Where to connect.
    public enum Address: Sendable, Hashable {
        /// A host name or address (IPv6 without brackets) and a port.
        case tcp(host: String, port: Int)
        /// A Unix domain socket's path.
        case unix(path: String)
    }

    /// Why a text is not a usable Redis URL. Its message never holds the password.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public let problem: String
        public var description: String { problem }
    }

    public let address: Address
    /// The ACL user (`AUTH user password`); `nil` authenticates as the default user.
    public let username: String?
    /// Sent with `AUTH`; `nil`: none.
    public let password: Secret?
    /// Chosen with `SELECT` (0 to 15 on a default server).
    public let database: Int
    /// Whether the connection speaks TLS (`rediss://`; TCP only).
    public let usesTLS: Bool

    /// The port Redis listens on unless told otherwise.
    public static let defaultPort = 6379

    public init(
        address: Address,
        username: String? = nil,
        password: Secret? = nil,
        database: Int = 0,
        usesTLS: Bool = false
    ) {
        self.usesTLS = usesTLS
        self.address = address
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses and checks `text`.
    public init(_ text: String) throws(Invalid) {
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw Invalid(problem: "must not contain spaces, control or non-ASCII characters")
        }
        guard let separator = text.firstRange(of: "://") else {
            throw Invalid(problem: "must be a URL such as redis://127.0.0.1:6379 or unix:///run/redis.sock")
        }
        let scheme = text[..<separator.lowerBound].lowercased()
        var rest = Substring(text[separator.upperBound...])
        guard scheme == "redis" || scheme == "rediss" || scheme == "unix" else {
            throw Invalid(problem: "must use redis://, rediss:// (TLS) or unix://")
        }
        // User information: up to the last `@` before the path (a password may hold `/`).
        var username: String?
        var password: Secret?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let parts = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let user = parts.first.map(String.init) ?? ""
            let secret = parts.count > 1 ? String(parts[1]) : ""
            guard !secret.isEmpty else {
                throw Invalid(problem: "has user information without a password (write redis://:password@host)")
            }
            username = user.isEmpty ? nil : try Self.decoded(user, what: "user name")
            password = Secret(try Self.decoded(secret, what: "password"))
        }
        if scheme == "unix" {
            var path = rest
            var database = 0
            if let question = rest.firstIndex(of: "?") {
                path = rest[..<question]
                let query = rest[rest.index(after: question)...]
                guard query.hasPrefix("db="), let number = Int(query.dropFirst(3)), (0...1023).contains(number)
                else { throw Invalid(problem: "takes only ?db=N (0 to 1023) after a socket's path") }
                database = number
            }
            guard path.hasPrefix("/"), path.count > 1 else {
                throw Invalid(problem: "must name a socket by its absolute path, as unix:///run/redis.sock")
            }
            self.init(address: .unix(path: String(path)), username: username, password: password, database: database)
            return
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var database = 0
        if slash < rest.endIndex {
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty {
                guard let number = Int(path), (0...1023).contains(number) else {
                    throw Invalid(problem: "may end with /N, a database number from 0 to 1023")
                }
                database = number
            }
        }
        var host = authority
        var port = Self.defaultPort
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw Invalid(problem: "has an unclosed [") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let number = Int(after.dropFirst()), (1...65535).contains(number) else {
                    throw Invalid(problem: "has a port that is not a number from 1 to 65535")
                }
                port = number
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let number = Int(authority[authority.index(after: colon)...]), (1...65535).contains(number) else {
                throw Invalid(problem: "has a port that is not a number from 1 to 65535")
            }
            port = number
        }
        guard !host.isEmpty else { throw Invalid(problem: "must name a host") }
        self.init(
            address: .tcp(host: String(host), port: port),
            username: username,
            password: password,
            database: database,
            usesTLS: scheme == "rediss"
        )
    }

    /// `text` with its `%XX` escapes decoded (a password may need them for `@`, `:` or `/`).
    private static func decoded(_ text: String, what: String) throws(Invalid) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue)
            else { throw Invalid(problem: "has a \(what) with a broken %-escape") }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw Invalid(problem: "has a \(what) that is not UTF-8")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The endpoint as logs and messages show it: the password (and user) as `***`.
    public var description: String {
        let credentials = password == nil ? "" : "***@"
        switch address {
        case .tcp(let host, let port):
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return "\(usesTLS ? "rediss" : "redis")://\(credentials)\(shownHost):\(port)/\(database)"
        case .unix(let path):
            return "unix://\(credentials)\(path)" + (database == 0 ? "" : "?db=\(database)")
        }
    }
}
