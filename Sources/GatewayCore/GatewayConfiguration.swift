/// Everything the gateway is configured with, validated.
///
/// Built from a key lookup (in the executable, `proxy.conf` overridden by the environment through
/// swift-configuration), so the rules live here and are tested without files.
public struct GatewayConfiguration: Sendable {
    /// One configuration key: its name, its default as written in `proxy.conf`, and what it means.
    public struct Key: Sendable, Hashable {
        public let name: String
        public let defaultValue: String?
        public let summary: String
    }

    /// Every key, in the order `proxy.conf` and the README list them.
    public static let keys: [Key] = [
        Key(name: "LISTEN_HOST", defaultValue: "127.0.0.1", summary: "address to bind"),
        Key(name: "LISTEN_PORT", defaultValue: "8080", summary: "port to bind (0 picks a free one)"),
        Key(name: "ADMIN_LISTEN", defaultValue: "127.0.0.1:9091", summary: "metrics and admin API: HOST:PORT or off"),
        Key(
            name: "TLS_CERT_FILE",
            defaultValue: nil,
            summary: "PEM certificate (and chain): the API listener speaks TLS"
        ),
        Key(name: "TLS_KEY_FILE", defaultValue: nil, summary: "PEM private key of TLS_CERT_FILE"),
        Key(name: "TLS_MIN_VERSION", defaultValue: "1.2", summary: "oldest TLS version taken: 1.2 or 1.3"),
        Key(name: "ADMIN_TLS", defaultValue: "off", summary: "the admin listener speaks TLS too: on or off"),
        Key(name: "UPSTREAM_URL", defaultValue: "https://api.elevenlabs.io", summary: "base URL of the upstream"),
        Key(name: "ELEVENLABS_API_KEY", defaultValue: nil, summary: "the shared upstream key, sent as xi-api-key"),
        Key(name: "ELEVENLABS_API_KEY_FILE", defaultValue: nil, summary: "a file holding ELEVENLABS_API_KEY instead"),
        Key(name: "UPSTREAM_PROXY", defaultValue: nil, summary: "egress proxy for upstream requests; unset: none"),
        Key(name: "UPSTREAM_TIMEOUT_MS", defaultValue: "10000", summary: "whole upstream request"),
        Key(name: "UPSTREAM_CONNECT_TIMEOUT_MS", defaultValue: "3000", summary: "connect phase"),
        Key(name: "CACHE_TTL_SECONDS", defaultValue: "30", summary: "freshness of a stored page"),
        Key(name: "CACHE_STALE_SECONDS", defaultValue: "300", summary: "how long a page may be served stale"),
        Key(name: "CACHE_MAX_BYTES", defaultValue: "67108864", summary: "memory bound of the cache"),
        Key(name: "UPSTREAM_MAX_CONCURRENCY", defaultValue: "4", summary: "most upstream requests at once"),
        Key(name: "UPSTREAM_MAX_QUEUE", defaultValue: "1024", summary: "most requests waiting for the upstream"),
        Key(name: "UPSTREAM_QUEUE_TIMEOUT_MS", defaultValue: "5000", summary: "longest wait for an upstream slot"),
        Key(name: "UPSTREAM_BACKOFF_MAX_SECONDS", defaultValue: "30", summary: "longest back-off after 429s"),
        Key(name: "IDLE_TIMEOUT_SECONDS", defaultValue: "60", summary: "close client connections idle this long"),
        Key(name: "REQUEST_HEAD_TIMEOUT_SECONDS", defaultValue: "10", summary: "time a request head may take"),
        Key(name: "MAX_CONNECTIONS", defaultValue: "4096", summary: "client connections open at once; more are closed"),
        Key(name: "EVENT_LOOP_THREADS", defaultValue: "auto", summary: "threads serving connections; auto: see README"),
        Key(name: "UPSTREAM_MAX_BODY_BYTES", defaultValue: "8388608", summary: "largest upstream answer; more is 502"),
        Key(name: "SHUTDOWN_GRACE_SECONDS", defaultValue: "10", summary: "time requests in flight get to finish"),
        Key(name: "LOG_LEVEL", defaultValue: "info", summary: "trace, debug, info, notice, warning, error"),
        Key(name: "LOG_FORMAT", defaultValue: "json", summary: "json (one object a line) or text"),
        Key(name: "ACCESS_LOG", defaultValue: "on", summary: "one line per request: on or off"),
        Key(name: "ADMIN_TOKEN", defaultValue: nil, summary: "enables the admin API; sent as a Bearer token"),
        Key(name: "ADMIN_TOKEN_FILE", defaultValue: nil, summary: "a file holding ADMIN_TOKEN instead"),
        Key(name: "CLIENTS_FILE", defaultValue: nil, summary: "teams and their token hashes; unset: open"),
        Key(name: "CLIENT_UPSTREAM_PER_MINUTE", defaultValue: "0", summary: "each team's upstream budget; 0: none"),
        Key(name: "CLIENT_CACHE_CONTROL", defaultValue: "on", summary: "honour clients' Cache-Control: on or off"),
        Key(name: "COMPRESSION", defaultValue: "on", summary: "ask for, store and serve gzip pages: on or off"),
        Key(name: "PASSTHROUGH", defaultValue: "on", summary: "forward run-tests, resubmit and get-invocation"),
        Key(name: "REDIS_URL", defaultValue: nil, summary: "the shared tier of several replicas; unset: alone"),
        Key(name: "REDIS_URL_FILE", defaultValue: nil, summary: "a file holding REDIS_URL instead"),
        Key(name: "REDIS_TLS_CA_FILE", defaultValue: nil, summary: "PEM roots for rediss://; unset: the system's"),
        Key(name: "REDIS_TIMEOUT_MS", defaultValue: "100", summary: "longest wait for one Redis answer"),
        Key(name: "REDIS_KEY_PREFIX", defaultValue: "xg", summary: "start of every key the gateway writes in Redis"),
        Key(name: "FALLBACK_MAX_CONCURRENCY", defaultValue: "1", summary: "each replica's cap while Redis is down"),
    ]

    public var listenHost: String
    public var listenPort: Int
    /// Where `/metrics`, the admin API and the status page are served; `nil` (`off`): on the API listener,
    /// the admin API behind `ADMIN_TOKEN` as a whole.
    public var adminListen: ListenAddress?
    /// The API listener's certificate and key; `nil`: plain HTTP.
    public var tls: ListenerTLSSettings?
    /// Whether the admin listener uses ``tls`` too (it is plain HTTP otherwise).
    public var adminTLS: Bool
    public var upstreamURL: UpstreamURL
    /// The proxy upstream requests go through; `nil`: none, whatever the environment's `http_proxy` says.
    /// A secret, as its URL may carry credentials: shown redacted.
    public var upstreamProxy: Secret?
    public var apiKey: Secret
    public var upstreamTimeoutMilliseconds: Int
    public var upstreamConnectTimeoutMilliseconds: Int
    public var cacheTTLSeconds: Int
    public var cacheStaleSeconds: Int
    public var cacheMaxBytes: Int
    public var upstreamMaxConcurrency: Int
    public var upstreamMaxQueue: Int
    public var upstreamQueueTimeoutMilliseconds: Int
    public var upstreamBackoffMaxSeconds: Int
    public var idleTimeoutSeconds: Int
    public var requestHeadTimeoutSeconds: Int
    public var maxConnections: Int
    /// Threads serving client connections; `nil` (`auto`) leaves the number to ``eventLoopThreads(cores:)``.
    public var eventLoopThreadCount: Int?
    public var upstreamMaxBodyBytes: Int
    public var shutdownGraceSeconds: Int
    public var logLevel: String
    public var logFormat: LogFormat
    public var accessLog: Bool
    /// `nil` keeps the admin API off.
    public var adminToken: Secret?
    /// The teams file; `nil` leaves the gateway open.
    public var clientsFile: String?
    /// Each team's upstream requests per minute unless its line says otherwise; `nil`: unlimited.
    public var clientUpstreamPerMinute: Int?
    /// Whether a list request's `Cache-Control` (`no-cache`, `max-age`, `only-if-cached`) is honoured.
    public var clientCacheControl: Bool
    /// Whether pages are asked for, stored and served as gzip (identity clients get them unpacked).
    public var compression: Bool
    /// Whether the write and single-invocation routes are forwarded.
    public var passthrough: Bool
    /// The shared tier's Redis; `nil`: this gateway works alone. Its password is a ``Secret``.
    public var redis: RedisEndpoint?
    /// The certificates a `rediss://` server's is checked against; `nil`: the system's roots.
    public var redisTLSCAFile: String?
    public var redisTimeoutMilliseconds: Int
    public var redisKeyPrefix: String
    public var fallbackMaxConcurrency: Int

    /// How log lines are written.
    public enum LogFormat: String, Sendable, Hashable {
        case json
        case text
    }

    /// The log levels `LOG_LEVEL` accepts, as swift-log names them.
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Reads and validates every key through `lookup`, which returns a key's value or `nil` when unset.
    /// The first bad key stops reading with an error that names it.
    public init(lookup: (String) -> String?) throws(ConfigurationError) {
        func value(_ name: String) -> String? {
            if let raw = lookup(name).map(Self.unquoted), !raw.isEmpty { return raw }
            return Self.keys.first { $0.name == name }?.defaultValue
        }
        func integer(_ name: String, in range: ClosedRange<Int>, _ meaning: String) throws(ConfigurationError) -> Int {
            let text = value(name) ?? ""
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError(key: name, problem: "must be \(meaning), got \"\(text)\"")
            }
            return number
        }
        func switchedOn(_ name: String) throws(ConfigurationError) -> Bool {
            switch (value(name) ?? "").lowercased() {
            case "on", "true", "yes", "1": return true
            case "off", "false", "no", "0": return false
            case let other: throw ConfigurationError(key: name, problem: "must be on or off, got \"\(other)\"")
            }
        }

        let host = value("LISTEN_HOST") ?? ""
        guard !host.isEmpty, host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw ConfigurationError(key: "LISTEN_HOST", problem: "must be an address such as 127.0.0.1 or 0.0.0.0")
        }
        self.listenHost = host
        self.listenPort = try integer("LISTEN_PORT", in: 0...65535, "an integer from 0 to 65535")
        let admin = value("ADMIN_LISTEN") ?? ""
        if admin.lowercased() == "off" {
            self.adminListen = nil
        } else {
            guard let address = ListenAddress(admin) else {
                throw ConfigurationError(
                    key: "ADMIN_LISTEN",
                    problem: "must be HOST:PORT (such as 127.0.0.1:9091, 0.0.0.0:9091 or [::1]:9091) or off, "
                        + "got \"\(admin)\""
                )
            }
            self.adminListen = address
        }

        let certificateFile = value("TLS_CERT_FILE")
        let keyFile = value("TLS_KEY_FILE")
        let minimumVersion = value("TLS_MIN_VERSION") ?? "1.2"
        guard let version = ListenerTLSSettings.Version(rawValue: minimumVersion) else {
            throw ConfigurationError(key: "TLS_MIN_VERSION", problem: "must be 1.2 or 1.3, got \"\(minimumVersion)\"")
        }
        switch (certificateFile, keyFile) {
        case (let certificate?, let key?):
            self.tls = ListenerTLSSettings(certificateFile: certificate, keyFile: key, minimumVersion: version)
        case (nil, nil):
            self.tls = nil
        case (nil, _):
            throw ConfigurationError(key: "TLS_CERT_FILE", problem: "must be set with TLS_KEY_FILE (or neither)")
        case (_, nil):
            throw ConfigurationError(key: "TLS_KEY_FILE", problem: "must be set with TLS_CERT_FILE (or neither)")
        }
        self.adminTLS = try switchedOn("ADMIN_TLS")
        if adminTLS, tls == nil {
            throw ConfigurationError(key: "ADMIN_TLS", problem: "is on, but TLS_CERT_FILE and TLS_KEY_FILE are not set")
        }
        if adminTLS, adminListen == nil {
            throw ConfigurationError(key: "ADMIN_TLS", problem: "is on, but ADMIN_LISTEN is off")
        }

        let urlText = value("UPSTREAM_URL") ?? ""
        do {
            self.upstreamURL = try UpstreamURL(urlText)
        } catch {
            // A URL may carry credentials: it is shown with them masked, however malformed it is.
            throw ConfigurationError(
                key: "UPSTREAM_URL",
                problem: error.problem + ", got \"\(RedactedURL.shown(urlText))\""
            )
        }
        if let proxy = value("UPSTREAM_PROXY"), !proxy.isEmpty {
            guard RedactedURL.isProxyURL(proxy) else {
                throw ConfigurationError(
                    key: "UPSTREAM_PROXY",
                    problem: "must be a proxy URL such as http://proxy.internal:3128 (schemes http, https, "
                        + "socks4, socks4a, socks5, socks5h), got \"\(RedactedURL.shown(proxy))\""
                )
            }
            self.upstreamProxy = Secret(proxy)
        } else {
            self.upstreamProxy = nil
        }

        guard let key = lookup("ELEVENLABS_API_KEY").map(Self.unquoted), !key.isEmpty else {
            throw ConfigurationError(
                key: "ELEVENLABS_API_KEY",
                problem: "is not set: put ELEVENLABS_API_KEY=<your key> in proxy.conf (or the file given with "
                    + "--config), or set it in the environment, or name a file holding it with "
                    + "ELEVENLABS_API_KEY_FILE"
            )
        }
        // A control character would let the key split the header it is sent in. The value is never echoed.
        guard key.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) else {
            throw ConfigurationError(key: "ELEVENLABS_API_KEY", problem: "contains a control character")
        }
        self.apiKey = Secret(key)

        let day = 86_400_000
        self.upstreamTimeoutMilliseconds = try integer("UPSTREAM_TIMEOUT_MS", in: 1...day, "a positive integer")
        self.upstreamConnectTimeoutMilliseconds = try integer(
            "UPSTREAM_CONNECT_TIMEOUT_MS",
            in: 1...day,
            "a positive integer"
        )
        self.cacheTTLSeconds = try integer("CACHE_TTL_SECONDS", in: 0...31_536_000, "an integer of seconds, 0 or more")
        self.cacheStaleSeconds = try integer(
            "CACHE_STALE_SECONDS",
            in: 0...31_536_000,
            "an integer of seconds, 0 or more"
        )
        self.cacheMaxBytes = try integer(
            "CACHE_MAX_BYTES",
            in: 0...Int(Int32.max) * 64,
            "an integer of bytes, 0 or more"
        )
        self.upstreamMaxConcurrency = try integer("UPSTREAM_MAX_CONCURRENCY", in: 1...1024, "an integer from 1 to 1024")
        self.upstreamMaxQueue = try integer("UPSTREAM_MAX_QUEUE", in: 0...1_000_000, "an integer, 0 or more")
        self.upstreamQueueTimeoutMilliseconds = try integer(
            "UPSTREAM_QUEUE_TIMEOUT_MS",
            in: 1...day,
            "a positive integer"
        )
        self.upstreamBackoffMaxSeconds = try integer(
            "UPSTREAM_BACKOFF_MAX_SECONDS",
            in: 1...86_400,
            "an integer of seconds from 1 to 86400"
        )
        self.idleTimeoutSeconds = try integer("IDLE_TIMEOUT_SECONDS", in: 1...86_400, "a positive integer of seconds")
        self.requestHeadTimeoutSeconds = try integer(
            "REQUEST_HEAD_TIMEOUT_SECONDS",
            in: 1...3_600,
            "an integer of seconds from 1 to 3600"
        )
        self.maxConnections = try integer("MAX_CONNECTIONS", in: 1...1_000_000, "an integer from 1 to 1000000")
        if let threads = value("EVENT_LOOP_THREADS"), threads.lowercased() != "auto" {
            guard let count = Int(threads), (1...Self.maxEventLoopThreads).contains(count) else {
                throw ConfigurationError(
                    key: "EVENT_LOOP_THREADS",
                    problem: "must be auto or an integer from 1 to \(Self.maxEventLoopThreads), got \"\(threads)\""
                )
            }
            self.eventLoopThreadCount = count
        } else {
            self.eventLoopThreadCount = nil
        }
        self.upstreamMaxBodyBytes = try integer(
            "UPSTREAM_MAX_BODY_BYTES",
            in: 1024...(1 << 30),
            "an integer of bytes from 1024 to 1073741824"
        )
        self.shutdownGraceSeconds = try integer(
            "SHUTDOWN_GRACE_SECONDS",
            in: 0...3_600,
            "an integer of seconds, 0 to 3600"
        )
        let level = (value("LOG_LEVEL") ?? "info").lowercased()
        guard Self.logLevels.contains(level) else {
            throw ConfigurationError(
                key: "LOG_LEVEL",
                problem: "must be one of \(Self.logLevels.joined(separator: ", ")), got \"\(level)\""
            )
        }
        self.logLevel = level
        let format = (value("LOG_FORMAT") ?? "json").lowercased()
        guard let logFormat = LogFormat(rawValue: format) else {
            throw ConfigurationError(key: "LOG_FORMAT", problem: "must be json or text, got \"\(format)\"")
        }
        self.logFormat = logFormat
        self.accessLog = try switchedOn("ACCESS_LOG")
        self.clientsFile = value("CLIENTS_FILE")
        let perMinute = try integer(
            "CLIENT_UPSTREAM_PER_MINUTE",
            in: 0...1_000_000,
            "an integer, 0 (unlimited) or more"
        )
        self.clientUpstreamPerMinute = perMinute == 0 ? nil : perMinute
        self.clientCacheControl = try switchedOn("CLIENT_CACHE_CONTROL")
        self.compression = try switchedOn("COMPRESSION")
        self.passthrough = try switchedOn("PASSTHROUGH")
        if let text = lookup("REDIS_URL").map(Self.unquoted), !text.isEmpty {
            do {
                self.redis = try RedisEndpoint(text)
            } catch {
                throw ConfigurationError(
                    key: "REDIS_URL",
                    problem: error.problem + ", got \"\(RedactedURL.shown(text))\""
                )
            }
        } else {
            self.redis = nil
        }
        self.redisTLSCAFile = value("REDIS_TLS_CA_FILE")
        if redisTLSCAFile != nil, redis?.usesTLS != true {
            throw ConfigurationError(
                key: "REDIS_TLS_CA_FILE",
                problem: "is set, but REDIS_URL is not a rediss:// URL: the connection to Redis would not use it"
            )
        }
        self.redisTimeoutMilliseconds = try integer("REDIS_TIMEOUT_MS", in: 1...60_000, "an integer from 1 to 60000")
        let prefix = value("REDIS_KEY_PREFIX") ?? "xg"
        // Printable, without spaces (keys and channels are shown in logs) or braces (the hash tag that keeps a
        // credential's keys in one cluster slot follows the prefix).
        guard (1...64).contains(prefix.utf8.count),
            prefix.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "{") && $0 != UInt8(ascii: "}") })
        else {
            throw ConfigurationError(
                key: "REDIS_KEY_PREFIX",
                problem: "must be 1 to 64 printable characters without spaces or braces, got \"\(prefix)\""
            )
        }
        self.redisKeyPrefix = prefix
        self.fallbackMaxConcurrency = try integer(
            "FALLBACK_MAX_CONCURRENCY",
            in: 1...1024,
            "an integer from 1 to 1024"
        )
        if let token = lookup("ADMIN_TOKEN").map(Self.unquoted), !token.isEmpty {
            // Short tokens can be guessed; the value is never echoed.
            guard token.utf8.count >= 16, token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw ConfigurationError(
                    key: "ADMIN_TOKEN",
                    problem: "must be at least 16 printable characters without spaces"
                )
            }
            self.adminToken = Secret(token)
        } else {
            self.adminToken = nil
        }
    }
}

extension GatewayConfiguration {
    /// The most event loop threads `EVENT_LOOP_THREADS` may ask for.
    public static let maxEventLoopThreads = 256

    /// The event loop threads to start on a machine with `cores` cores: `EVENT_LOOP_THREADS`, or for `auto`
    /// the core count.
    public func eventLoopThreads(cores: Int) -> Int {
        eventLoopThreadCount ?? max(1, cores)
    }

    /// A value as written: spaces (and a carriage return from a Windows editor) around it dropped, and one
    /// pair of matching quotes around it, as env files and shells write them.
    static func unquoted(_ raw: String) -> String {
        var text = raw.trimmingASCIISpaces
        while text.hasSuffix("\r") { text.removeLast() }
        text = text.trimmingASCIISpaces
        if text.count >= 2, let first = text.first, first == "\"" || first == "'", text.last == first {
            text = String(text.dropFirst().dropLast())
        }
        return text
    }
}

/// A configuration value that cannot be used; the message names the key and never holds a secret.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The key at fault.
    public let key: String
    /// What is wrong with it.
    public let problem: String

    public var description: String { "\(key) \(problem)" }

    /// The error that `key` is wrong because of `problem` (which must not hold a secret).
    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }
}

/// The upstream's base URL, checked: `http` or `https`, a host, an optional path prefix, nothing else.
public struct UpstreamURL: Sendable, Hashable, CustomStringConvertible {
    /// `http` or `https`, lowercased.
    public let scheme: String
    /// `host` or `host:port` (IPv6 in brackets).
    public let authority: String
    /// A path prefix without a trailing `/`, often empty.
    public let pathPrefix: String

    /// Why a text is not a usable upstream URL.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let problem: String
        /// The text had `user:password@` in it, so it must not be shown.
        public var carriesCredentials = false
        public var description: String { problem }
    }

    /// Parses and checks `text`, e.g. `https://api.elevenlabs.io` or `http://127.0.0.1:9000/prefix/`.
    public init(_ text: String) throws(Invalid) {
        guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else {
            throw Invalid(problem: "must be an absolute http or https URL such as https://api.elevenlabs.io")
        }
        let scheme = text[..<colon].lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw Invalid(problem: "must use http or https")
        }
        let rest = text[text.index(colon, offsetBy: 3)...]
        guard rest.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw Invalid(problem: "must not contain spaces or non-ASCII characters")
        }
        guard !rest.contains("?"), !rest.contains("#") else {
            throw Invalid(problem: "must not have a query or fragment")
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = String(rest[..<slash])
        guard !authority.isEmpty else { throw Invalid(problem: "must name a host") }
        guard !authority.contains("@") else {
            throw Invalid(
                problem: "must not carry credentials; set ELEVENLABS_API_KEY instead",
                carriesCredentials: true
            )
        }
        if let portStart = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            let port = authority[authority.index(after: portStart)...]
            guard let number = Int(port), (1...65535).contains(number) else {
                throw Invalid(problem: "has a port that is not a number from 1 to 65535")
            }
        }
        var path = String(rest[slash...])
        while path.hasSuffix("/") { path.removeLast() }
        self.scheme = scheme
        self.authority = authority
        self.pathPrefix = path
    }

    public var description: String { "\(scheme)://\(authority)\(pathPrefix)" }
}

extension GatewayConfiguration {
    /// What `xi-gateway check-config` prints: every key in force, in the order of ``keys``, with its value as
    /// the gateway uses it. Secrets (the key, the admin token) are `<redacted>` when set; URLs show their
    /// credentials as `***`; the teams file is its path and `teams`, the number of teams it holds. A key
    /// that takes a secret from a file (`*_FILE`) is not listed: the secret it reads is.
    public func shownSettings(teams: Int?) -> [(name: String, value: String)] {
        func on(_ flag: Bool) -> String { flag ? "on" : "off" }
        let values: [String: String] = [
            "LISTEN_HOST": listenHost,
            "LISTEN_PORT": "\(listenPort)",
            "ADMIN_LISTEN": adminListen?.description ?? "off",
            "TLS_CERT_FILE": tls?.certificateFile ?? "",
            "TLS_KEY_FILE": tls?.keyFile ?? "",
            "TLS_MIN_VERSION": tls?.minimumVersion.rawValue ?? "1.2",
            "ADMIN_TLS": on(adminTLS),
            "UPSTREAM_URL": upstreamURL.description,
            "ELEVENLABS_API_KEY": "<redacted>",
            "UPSTREAM_PROXY": upstreamProxy.map { RedactedURL.shown($0.revealed) } ?? "",
            "UPSTREAM_TIMEOUT_MS": "\(upstreamTimeoutMilliseconds)",
            "UPSTREAM_CONNECT_TIMEOUT_MS": "\(upstreamConnectTimeoutMilliseconds)",
            "CACHE_TTL_SECONDS": "\(cacheTTLSeconds)",
            "CACHE_STALE_SECONDS": "\(cacheStaleSeconds)",
            "CACHE_MAX_BYTES": "\(cacheMaxBytes)",
            "UPSTREAM_MAX_CONCURRENCY": "\(upstreamMaxConcurrency)",
            "UPSTREAM_MAX_QUEUE": "\(upstreamMaxQueue)",
            "UPSTREAM_QUEUE_TIMEOUT_MS": "\(upstreamQueueTimeoutMilliseconds)",
            "UPSTREAM_BACKOFF_MAX_SECONDS": "\(upstreamBackoffMaxSeconds)",
            "IDLE_TIMEOUT_SECONDS": "\(idleTimeoutSeconds)",
            "REQUEST_HEAD_TIMEOUT_SECONDS": "\(requestHeadTimeoutSeconds)",
            "MAX_CONNECTIONS": "\(maxConnections)",
            "EVENT_LOOP_THREADS": eventLoopThreadCount.map(String.init) ?? "auto",
            "UPSTREAM_MAX_BODY_BYTES": "\(upstreamMaxBodyBytes)",
            "SHUTDOWN_GRACE_SECONDS": "\(shutdownGraceSeconds)",
            "LOG_LEVEL": logLevel,
            "LOG_FORMAT": logFormat.rawValue,
            "ACCESS_LOG": on(accessLog),
            "ADMIN_TOKEN": adminToken == nil ? "" : "<redacted>",
            "CLIENTS_FILE": clientsFile.map { "\($0) (\(teams ?? 0) teams)" } ?? "",
            "CLIENT_UPSTREAM_PER_MINUTE": "\(clientUpstreamPerMinute ?? 0)",
            "CLIENT_CACHE_CONTROL": on(clientCacheControl),
            "COMPRESSION": on(compression),
            "PASSTHROUGH": on(passthrough),
            "REDIS_URL": redis?.description ?? "",
            "REDIS_TLS_CA_FILE": redisTLSCAFile ?? "",
            "REDIS_TIMEOUT_MS": "\(redisTimeoutMilliseconds)",
            "REDIS_KEY_PREFIX": redisKeyPrefix,
            "FALLBACK_MAX_CONCURRENCY": "\(fallbackMaxConcurrency)",
        ]
        return Self.keys.compactMap { key in values[key.name].map { (key.name, $0) } }
    }
}

/// Where the API listener's TLS certificate and key are, and the oldest TLS version it takes. The files are
/// read by the listener (and again on `SIGHUP`); the key file is a secret: its path may be shown, never what
/// it holds.
public struct ListenerTLSSettings: Sendable, Hashable {
    /// The TLS versions `TLS_MIN_VERSION` names.
    public enum Version: String, Sendable, Hashable {
        case v1_2 = "1.2"
        case v1_3 = "1.3"
    }

    /// PEM: the certificate, then any intermediates.
    public var certificateFile: String
    /// PEM: the certificate's private key.
    public var keyFile: String
    public var minimumVersion: Version

    public init(certificateFile: String, keyFile: String, minimumVersion: Version = .v1_2) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.minimumVersion = minimumVersion
    }
}

/// An address to listen on, as `HOST:PORT` (an IPv6 host in brackets: `[::1]:9091`).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The host to bind, without brackets.
    public var host: String
    /// The port to bind; 0 picks a free one.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; `nil` when `text` is not one.
    public init?(_ text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[close...].hasPrefix("]:") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            guard host.contains(":") else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard !host.contains(":") else { return nil }
        }
        guard !host.isEmpty, host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }),
            portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let port = Int(portText), (0...65535).contains(port)
        else { return nil }
        self.host = String(host)
        self.port = port
    }

    /// `HOST:PORT`, with an IPv6 host in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
