import Testing

@testable import GatewayCore

private let apiKey = "sk_test_Zq9SecretValue"

/// Builds a configuration from `values` (unset keys are `nil`), with the API key set unless overridden.
private func configuration(_ values: [String: String]) -> Result<GatewayConfiguration, ConfigurationError> {
    var values = values
    if values["ELEVENLABS_API_KEY"] == nil { values["ELEVENLABS_API_KEY"] = apiKey }
    return Result { () throws(ConfigurationError) -> GatewayConfiguration in
        try GatewayConfiguration(lookup: { values[$0] })
    }
}

private func error(_ values: [String: String]) -> ConfigurationError? {
    guard case .failure(let error) = configuration(values) else { return nil }
    return error
}

@Suite("GatewayConfiguration: defaults and validation")
struct ConfigurationTests {
    @Test func defaultsNeedOnlyTheAPIKey() throws {
        let config = try configuration([:]).get()
        #expect(config.listenHost == "127.0.0.1")
        #expect(config.listenPort == 8080)
        #expect(config.upstreamURL.description == "https://api.elevenlabs.io")
        #expect(config.apiKey.revealed == apiKey)
        #expect(config.upstreamTimeoutMilliseconds == 10_000)
        #expect(config.upstreamConnectTimeoutMilliseconds == 3000)
        #expect(config.cacheTTLSeconds == 30)
        #expect(config.cacheMaxBytes == 67_108_864)
        #expect(config.cacheStaleSeconds == 300)
        #expect(config.upstreamMaxConcurrency == 4)
        #expect(config.upstreamMaxQueue == 1024)
        #expect(config.upstreamQueueTimeoutMilliseconds == 5000)
        #expect(config.upstreamBackoffMaxSeconds == 30)
        #expect(config.idleTimeoutSeconds == 60)
    }

    @Test func keysAreListedInOrderAndOnlyTheAPIKeyHasNoDefault() {
        #expect(
            GatewayConfiguration.keys.map(\.name) == [
                "LISTEN_HOST", "LISTEN_PORT", "ADMIN_LISTEN", "TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_MIN_VERSION",
                "ADMIN_TLS", "UPSTREAM_URL", "ELEVENLABS_API_KEY",
                "ELEVENLABS_API_KEY_FILE",
                "UPSTREAM_PROXY",
                "UPSTREAM_TIMEOUT_MS",
                "UPSTREAM_CONNECT_TIMEOUT_MS", "CACHE_TTL_SECONDS", "CACHE_STALE_SECONDS", "CACHE_MAX_BYTES",
                "UPSTREAM_MAX_CONCURRENCY", "UPSTREAM_MAX_QUEUE", "UPSTREAM_QUEUE_TIMEOUT_MS",
                "UPSTREAM_BACKOFF_MAX_SECONDS", "IDLE_TIMEOUT_SECONDS", "REQUEST_HEAD_TIMEOUT_SECONDS",
                "MAX_CONNECTIONS", "EVENT_LOOP_THREADS", "UPSTREAM_MAX_BODY_BYTES",
                "SHUTDOWN_GRACE_SECONDS", "LOG_LEVEL",
                "LOG_FORMAT", "ACCESS_LOG", "ADMIN_TOKEN", "ADMIN_TOKEN_FILE", "CLIENTS_FILE",
                "CLIENT_UPSTREAM_PER_MINUTE", "CLIENT_CACHE_CONTROL", "COMPRESSION", "PASSTHROUGH", "REDIS_URL",
                "REDIS_URL_FILE", "REDIS_TLS_CA_FILE",
                "REDIS_TIMEOUT_MS",
                "REDIS_KEY_PREFIX", "FALLBACK_MAX_CONCURRENCY",
            ]
        )
        #expect(
            GatewayConfiguration.keys.filter { $0.defaultValue == nil }.map(\.name) == [
                "TLS_CERT_FILE", "TLS_KEY_FILE", "ELEVENLABS_API_KEY", "ELEVENLABS_API_KEY_FILE", "UPSTREAM_PROXY",
                "ADMIN_TOKEN", "ADMIN_TOKEN_FILE",
                "CLIENTS_FILE", "REDIS_URL", "REDIS_URL_FILE", "REDIS_TLS_CA_FILE",
            ]
        )
        #expect(GatewayConfiguration.keys.allSatisfy { !$0.summary.isEmpty })
    }

    @Test func emptyValuesFallBackToDefaultsAndSpacesAreTrimmed() throws {
        let config = try configuration([
            "LISTEN_HOST": "",
            "LISTEN_PORT": " 9090\t",
            "CACHE_TTL_SECONDS": "  ",
            "ELEVENLABS_API_KEY": "  \(apiKey)\t",
        ]).get()
        #expect(config.listenHost == "127.0.0.1")
        #expect(config.listenPort == 9090)
        #expect(config.cacheTTLSeconds == 30)
        #expect(config.apiKey.revealed == apiKey)
    }

    @Test func boundaryValuesAreAccepted() throws {
        let config = try configuration([
            "LISTEN_HOST": "0.0.0.0",
            "LISTEN_PORT": "0",
            "CACHE_TTL_SECONDS": "0",
            "CACHE_MAX_BYTES": "0",
            "UPSTREAM_TIMEOUT_MS": "1",
            "IDLE_TIMEOUT_SECONDS": "86400",
        ]).get()
        #expect(config.listenHost == "0.0.0.0")
        #expect(config.listenPort == 0)
        #expect(config.cacheTTLSeconds == 0)
        #expect(config.cacheMaxBytes == 0)
        #expect(config.upstreamTimeoutMilliseconds == 1)
        #expect(config.idleTimeoutSeconds == 86_400)
        #expect(try configuration(["LISTEN_PORT": "65535"]).get().listenPort == 65_535)
    }

    @Test(arguments: [[:], ["ELEVENLABS_API_KEY": ""], ["ELEVENLABS_API_KEY": " \t "]] as [[String: String]])
    func missingAPIKeyNamesTheKey(values: [String: String]) {
        let found = Result { () throws(ConfigurationError) -> GatewayConfiguration in
            try GatewayConfiguration(lookup: { values[$0] })
        }
        guard case .failure(let error) = found else {
            Issue.record("a configuration without ELEVENLABS_API_KEY was accepted")
            return
        }
        #expect(error.key == "ELEVENLABS_API_KEY")
        #expect(error.description.hasPrefix("ELEVENLABS_API_KEY "))
        #expect(error.problem.contains("proxy.conf"))
    }

    /// Every way a value can be wrong, with the key the error must name.
    @Test(
        arguments: [
            (["LISTEN_HOST": "local host"], "LISTEN_HOST"),
            (["LISTEN_HOST": "h\u{E9}te"], "LISTEN_HOST"),
            (["LISTEN_PORT": "65536"], "LISTEN_PORT"),
            (["LISTEN_PORT": "-1"], "LISTEN_PORT"),
            (["LISTEN_PORT": "80.5"], "LISTEN_PORT"),
            (["LISTEN_PORT": "http"], "LISTEN_PORT"),
            (["LISTEN_PORT": "99999999999999999999"], "LISTEN_PORT"),
            (["ADMIN_LISTEN": "9091"], "ADMIN_LISTEN"),
            (["ADMIN_LISTEN": "127.0.0.1"], "ADMIN_LISTEN"),
            (["ADMIN_LISTEN": "127.0.0.1:"], "ADMIN_LISTEN"),
            (["ADMIN_LISTEN": ":9091"], "ADMIN_LISTEN"),
            (["ADMIN_LISTEN": "127.0.0.1:65536"], "ADMIN_LISTEN"),
            (["ADMIN_LISTEN": "127.0.0.1:+91"], "ADMIN_LISTEN"),
            (["ADMIN_LISTEN": "::1:9091"], "ADMIN_LISTEN"),
            (["ADMIN_LISTEN": "[::1]9091"], "ADMIN_LISTEN"),
            (["ADMIN_LISTEN": "[127.0.0.1]:9091"], "ADMIN_LISTEN"),
            (["ADMIN_LISTEN": "no"], "ADMIN_LISTEN"),
            (["CLIENT_CACHE_CONTROL": "sometimes"], "CLIENT_CACHE_CONTROL"),
            (["COMPRESSION": "br"], "COMPRESSION"),
            (["UPSTREAM_URL": "api.elevenlabs.io"], "UPSTREAM_URL"),
            (["UPSTREAM_URL": "localhost:8080"], "UPSTREAM_URL"),
            (["UPSTREAM_URL": "ftp://api.elevenlabs.io"], "UPSTREAM_URL"),
            (["UPSTREAM_URL": "https://"], "UPSTREAM_URL"),
            (["UPSTREAM_URL": "https:///v1"], "UPSTREAM_URL"),
            (["UPSTREAM_URL": "https://api elevenlabs.io"], "UPSTREAM_URL"),
            (["UPSTREAM_URL": "https://api.elevenlabs.io/?x=1"], "UPSTREAM_URL"),
            (["UPSTREAM_URL": "https://api.elevenlabs.io/#top"], "UPSTREAM_URL"),
            (["UPSTREAM_URL": "https://user:pw@api.elevenlabs.io"], "UPSTREAM_URL"),
            (["ELEVENLABS_API_KEY": "sk\r\nX-Injected: 1"], "ELEVENLABS_API_KEY"),
            (["ELEVENLABS_API_KEY": "sk\u{7F}"], "ELEVENLABS_API_KEY"),
            (["UPSTREAM_TIMEOUT_MS": "0"], "UPSTREAM_TIMEOUT_MS"),
            (["UPSTREAM_TIMEOUT_MS": "86400001"], "UPSTREAM_TIMEOUT_MS"),
            (["UPSTREAM_CONNECT_TIMEOUT_MS": "abc"], "UPSTREAM_CONNECT_TIMEOUT_MS"),
            (["CACHE_TTL_SECONDS": "-1"], "CACHE_TTL_SECONDS"),
            (["CACHE_TTL_SECONDS": "1.5"], "CACHE_TTL_SECONDS"),
            (["CACHE_MAX_BYTES": "-5"], "CACHE_MAX_BYTES"),
            (["IDLE_TIMEOUT_SECONDS": "0"], "IDLE_TIMEOUT_SECONDS"),
            (["EVENT_LOOP_THREADS": "0"], "EVENT_LOOP_THREADS"),
            (["EVENT_LOOP_THREADS": "257"], "EVENT_LOOP_THREADS"),
            (["EVENT_LOOP_THREADS": "-2"], "EVENT_LOOP_THREADS"),
            (["EVENT_LOOP_THREADS": "cores"], "EVENT_LOOP_THREADS"),
        ] as [([String: String], String)]
    )
    func badValueNamesItsKey(values: [String: String], key: String) throws {
        let found = try #require(error(values))
        #expect(found.key == key)
        #expect(found.description == key + " " + found.problem)
        #expect(!found.problem.isEmpty)
        #expect(!found.description.contains(apiKey))
        #expect(!String(reflecting: found).contains(apiKey))
    }

    /// `auto` (the default) starts one event loop per core; a number starts that many, whatever the cores.
    @Test func eventLoopThreadsAreOnePerCoreUnlessSet() throws {
        let automatic = try configuration([:]).get()
        #expect(automatic.eventLoopThreadCount == nil)
        #expect(automatic.eventLoopThreads(cores: 2) == 2)
        #expect(automatic.eventLoopThreads(cores: 16) == 16)
        #expect(automatic.eventLoopThreads(cores: 0) == 1)
        #expect(try configuration(["EVENT_LOOP_THREADS": " AUTO "]).get().eventLoopThreads(cores: 3) == 3)
        let one = try configuration(["EVENT_LOOP_THREADS": "1"]).get()
        #expect(one.eventLoopThreads(cores: 8) == 1)
        let most = try configuration(["EVENT_LOOP_THREADS": "256"]).get()
        #expect(most.eventLoopThreads(cores: 2) == 256)
        #expect(error(["EVENT_LOOP_THREADS": "0"])?.problem == #"must be auto or an integer from 1 to 256, got "0""#)
    }

    @Test func rejectedAPIKeyIsNeverEchoed() throws {
        let found = try #require(error(["ELEVENLABS_API_KEY": "sk_live_Hidden\nValue"]))
        #expect(found.key == "ELEVENLABS_API_KEY")
        #expect(!found.description.contains("sk_live_Hidden"))
        #expect(!found.description.contains("Value"))
    }

    /// A key pasted into the URL as credentials is refused, and the refusal must not repeat it, however
    /// else the URL is wrong: every message shows it with its user information as `***`.
    @Test(arguments: [
        ("https://user:SECRET@api.elevenlabs.io", "https://***@api.elevenlabs.io"),
        ("ftp://user:SECRET@host", "ftp://***@host"),
        ("user:SECRET@host", "***@host"),
        ("https://user:SEC RET@host", "https://***@host"),
        ("https://user:SECRET@host/?x=1", "https://***@host/?x=1"),
        ("https://user:SECRET@host/#top", "https://***@host/#top"),
        ("https://u:SECRET/x@host", "https://***@host"),
        ("https://user:SECRET@", "https://***@"),
    ])
    func credentialsInTheURLAreNeverEchoed(url: String, shown: String) throws {
        let withKey = url.replacing("SECRET", with: apiKey)
        let found = try #require(error(["UPSTREAM_URL": withKey]))
        #expect(found.key == "UPSTREAM_URL")
        #expect(!found.description.contains(apiKey))
        #expect(found.description.contains(#"got "\#(shown)""#))
    }

    @Test func upstreamProxyIsOffByDefaultAndChecked() throws {
        #expect(try configuration([:]).get().upstreamProxy == nil)
        let proxy = "http://egress:\(apiKey)@proxy.internal:3128"
        let config = try configuration(["UPSTREAM_PROXY": proxy]).get()
        #expect(config.upstreamProxy?.revealed == proxy)
        #expect(!String(describing: config).contains(apiKey))
        for bad in ["proxy.internal:3128", "ftp://proxy", "http://", "http://u:\(apiKey)@"] {
            let found = try #require(error(["UPSTREAM_PROXY": bad]), "\(bad)")
            #expect(found.key == "UPSTREAM_PROXY")
            #expect(!found.description.contains(apiKey))
        }
    }

    @Test func configurationPrintsWithoutTheKey() throws {
        let config = try configuration([:]).get()
        #expect(!String(describing: config).contains(apiKey))
        #expect(!String(reflecting: config).contains(apiKey))
        var dumped = ""
        dump(config, to: &dumped)
        #expect(!dumped.contains(apiKey))
    }

    @Test func secretShowsOnlyAPlaceholder() {
        let secret = Secret(apiKey)
        #expect(secret.description == "<redacted>")
        #expect(secret.debugDescription == "<redacted>")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        #expect(Mirror(reflecting: secret).children.isEmpty)
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains(apiKey))
        #expect(secret.revealed == apiKey)
    }
}

@Suite("UpstreamURL: normalisation")
struct UpstreamURLTests {
    /// Input, then scheme, authority, path prefix and the normalised text.
    @Test(
        arguments: [
            ("https://api.elevenlabs.io", "https", "api.elevenlabs.io", "", "https://api.elevenlabs.io"),
            ("https://api.elevenlabs.io/", "https", "api.elevenlabs.io", "", "https://api.elevenlabs.io"),
            ("HTTPS://api.elevenlabs.io", "https", "api.elevenlabs.io", "", "https://api.elevenlabs.io"),
            ("Http://127.0.0.1:9000", "http", "127.0.0.1:9000", "", "http://127.0.0.1:9000"),
            ("http://127.0.0.1:9000/prefix//", "http", "127.0.0.1:9000", "/prefix", "http://127.0.0.1:9000/prefix"),
            ("http://[::1]:8080/a/b/", "http", "[::1]:8080", "/a/b", "http://[::1]:8080/a/b"),
        ]
    )
    func normalises(text: String, scheme: String, authority: String, pathPrefix: String, normalised: String) throws {
        let url = try UpstreamURL(text)
        #expect(url.scheme == scheme)
        #expect(url.authority == authority)
        #expect(url.pathPrefix == pathPrefix)
        #expect(url.description == normalised)
    }

    @Test func configurationTrimsTheURL() throws {
        let config = try configuration(["UPSTREAM_URL": "  http://localhost:8081/  "]).get()
        let expected = try UpstreamURL("http://localhost:8081")
        #expect(config.upstreamURL == expected)
        #expect(config.upstreamURL.description == "http://localhost:8081")
    }
}

@Suite("GatewayConfiguration: values as people write them")
struct ConfigurationWritingTests {
    @Test(arguments: [
        ("\"sk_quoted\"", "sk_quoted"), ("'sk_single'", "sk_single"), ("sk_cr\r", "sk_cr"), (" sk ", "sk"),
    ])
    func quotesAndCarriageReturnsAreNotPartOfTheValue(written: String, expected: String) throws {
        let configuration = try GatewayConfiguration { $0 == "ELEVENLABS_API_KEY" ? written : nil }
        #expect(configuration.apiKey.revealed == expected)
    }

    @Test(arguments: ["https://host:abc", "https://host:0", "https://host:70000", "http://host:"])
    func anUpstreamPortMustBeANumber(url: String) {
        #expect(throws: ConfigurationError.self) {
            try GatewayConfiguration { ["ELEVENLABS_API_KEY": "k", "UPSTREAM_URL": url][$0] }
        }
    }

    @Test(arguments: ["https://host:8443", "http://[::1]:8080/base", "http://[::1]"])
    func validPortsAndIPv6HostsAreAccepted(url: String) throws {
        let configuration = try GatewayConfiguration { ["ELEVENLABS_API_KEY": "k", "UPSTREAM_URL": url][$0] }
        #expect(configuration.upstreamURL.description.hasPrefix("http"))
    }
}

@Suite("GatewayConfiguration: the shared tier's keys")
struct SharedTierConfigurationTests {
    @Test func unsetRedisURLMeansAlone() throws {
        let config = try configuration([:]).get()
        #expect(config.redis == nil)
        #expect(config.redisTimeoutMilliseconds == 100)
        #expect(config.redisKeyPrefix == "xg")
        #expect(config.fallbackMaxConcurrency == 1)
    }

    @Test func aRedisURLIsParsedAndItsPasswordKeptSecret() throws {
        let config = try configuration([
            "REDIS_URL": "redis://:s3cret-pass@redis.internal:6380/2",
            "REDIS_TIMEOUT_MS": "250",
            "REDIS_KEY_PREFIX": "xg-prod",
            "FALLBACK_MAX_CONCURRENCY": "3",
        ]).get()
        let redis = try #require(config.redis)
        #expect(redis.address == .tcp(host: "redis.internal", port: 6380))
        #expect(redis.database == 2)
        #expect(redis.password?.revealed == "s3cret-pass")
        #expect(redis.description == "redis://***@redis.internal:6380/2")
        #expect(!"\(config)".contains("s3cret-pass"))
        #expect(config.redisTimeoutMilliseconds == 250)
        #expect(config.redisKeyPrefix == "xg-prod")
        #expect(config.fallbackMaxConcurrency == 3)
    }

    @Test func aBadRedisURLIsNamedWithItsPasswordMasked() throws {
        let found = try #require(error(["REDIS_URL": "http://user:s3cret-pass@host:6379"]))
        #expect(found.key == "REDIS_URL")
        #expect(!found.description.contains("s3cret-pass"))
        #expect(found.description.contains("***@host:6379"))
    }

    @Test(arguments: [
        ("REDIS_TIMEOUT_MS", "0"), ("REDIS_TIMEOUT_MS", "60001"), ("REDIS_TIMEOUT_MS", "fast"),
        ("REDIS_KEY_PREFIX", "has space"), ("REDIS_KEY_PREFIX", "{tag}"),
        ("REDIS_KEY_PREFIX", String(repeating: "x", count: 65)),
        ("REDIS_KEY_PREFIX", "é"), ("FALLBACK_MAX_CONCURRENCY", "0"), ("FALLBACK_MAX_CONCURRENCY", "1025"),
    ])
    func badSharedTierValuesNameTheirKey(key: String, value: String) throws {
        let found = try #require(error([key: value]))
        #expect(found.key == key)
    }
}

@Suite("GatewayConfiguration: TLS on the listeners")
struct TLSConfigurationTests {
    @Test func tlsIsOffUnlessBothFilesAreSet() throws {
        let plain = try configuration([:]).get()
        #expect(plain.tls == nil)
        #expect(!plain.adminTLS)

        let on = try configuration([
            "TLS_CERT_FILE": "/etc/tls/cert.pem", "TLS_KEY_FILE": "/etc/tls/key.pem", "TLS_MIN_VERSION": "1.3",
            "ADMIN_TLS": "on",
        ]).get()
        #expect(
            on.tls
                == ListenerTLSSettings(
                    certificateFile: "/etc/tls/cert.pem",
                    keyFile: "/etc/tls/key.pem",
                    minimumVersion: .v1_3
                )
        )
        #expect(on.adminTLS)
        let redis = try configuration(["REDIS_URL": "rediss://cache:6380", "REDIS_TLS_CA_FILE": "/ca.pem"]).get()
        #expect(redis.redis?.usesTLS == true)
        #expect(redis.redisTLSCAFile == "/ca.pem")
        let shown = Dictionary(uniqueKeysWithValues: on.shownSettings(teams: nil).map { ($0.name, $0.value) })
        #expect(shown["TLS_CERT_FILE"] == "/etc/tls/cert.pem", "paths are shown; the key's content never is")
        #expect(shown["TLS_KEY_FILE"] == "/etc/tls/key.pem")
        #expect(shown["TLS_MIN_VERSION"] == "1.3")
        #expect(shown["ADMIN_TLS"] == "on")
    }

    /// One file without the other, an unknown version, the admin listener's TLS without a pair or without
    /// an admin listener: each names its key.
    @Test(arguments: [
        (["TLS_CERT_FILE": "/c.pem"], "TLS_KEY_FILE"),
        (["TLS_KEY_FILE": "/k.pem"], "TLS_CERT_FILE"),
        (["TLS_MIN_VERSION": "1.1"], "TLS_MIN_VERSION"),
        (["TLS_MIN_VERSION": "1.0", "TLS_CERT_FILE": "/c.pem", "TLS_KEY_FILE": "/k.pem"], "TLS_MIN_VERSION"),
        (["ADMIN_TLS": "on"], "ADMIN_TLS"),
        (["ADMIN_TLS": "maybe"], "ADMIN_TLS"),
        (["ADMIN_TLS": "on", "ADMIN_LISTEN": "off", "TLS_CERT_FILE": "/c.pem", "TLS_KEY_FILE": "/k.pem"], "ADMIN_TLS"),
        (["REDIS_TLS_CA_FILE": "/ca.pem"], "REDIS_TLS_CA_FILE"),
        (["REDIS_TLS_CA_FILE": "/ca.pem", "REDIS_URL": "redis://cache:6379"], "REDIS_TLS_CA_FILE"),
    ])
    func aHalfTLSConfigurationNamesItsKey(settings: [String: String], key: String) throws {
        let found = try #require(error(settings))
        #expect(found.key == key, "\(found)")
    }
}

@Suite("GatewayConfiguration: the settings check-config shows")
struct ShownSettingsTests {
    @Test func everyKeyButTheFileKeysIsShownInOrderWithSecretsRedacted() throws {
        let config = try configuration([
            "ADMIN_TOKEN": "admin-token-0123456789abcdef",
            "REDIS_URL": "redis://:s3cret-pass@redis.internal:6380/2",
            "UPSTREAM_PROXY": "http://user:proxy-pass@proxy:3128",
            "CLIENTS_FILE": "/etc/xi/teams",
            "EVENT_LOOP_THREADS": "3",
        ]).get()
        let shown = config.shownSettings(teams: 4)
        #expect(
            shown.map(\.name)
                == GatewayConfiguration.keys.map(\.name).filter {
                    !$0.hasSuffix("_FILE")
                        || ["CLIENTS_FILE", "TLS_CERT_FILE", "TLS_KEY_FILE", "REDIS_TLS_CA_FILE"].contains($0)
                }
        )
        let values = Dictionary(uniqueKeysWithValues: shown.map { ($0.name, $0.value) })
        #expect(values["ELEVENLABS_API_KEY"] == "<redacted>")
        #expect(values["ADMIN_TOKEN"] == "<redacted>")
        #expect(values["REDIS_URL"] == "redis://***@redis.internal:6380/2")
        #expect(values["UPSTREAM_PROXY"] == "http://***@proxy:3128")
        #expect(values["CLIENTS_FILE"] == "/etc/xi/teams (4 teams)")
        #expect(values["EVENT_LOOP_THREADS"] == "3")
        #expect(values["CACHE_TTL_SECONDS"] == "30")
        let all = shown.map { "\($0.name)=\($0.value)" }.joined(separator: "\n")
        for secret in [apiKey, "admin-token-0123456789abcdef", "s3cret-pass", "proxy-pass"] {
            #expect(!all.contains(secret))
        }
    }

    /// The admin listener is on by default, on this machine only; `off` (any case) turns it off; an IPv6
    /// host goes in brackets, and is shown so.
    @Test func theAdminListenerIsLocalByDefaultAndCanBeTurnedOff() throws {
        #expect(try configuration([:]).get().adminListen == ListenAddress(host: "127.0.0.1", port: 9091))
        #expect(try configuration(["ADMIN_LISTEN": "off"]).get().adminListen == nil)
        #expect(try configuration(["ADMIN_LISTEN": "OFF"]).get().adminListen == nil)
        #expect(
            try configuration(["ADMIN_LISTEN": "0.0.0.0:0"]).get().adminListen
                == ListenAddress(host: "0.0.0.0", port: 0)
        )
        let v6 = try #require(try configuration(["ADMIN_LISTEN": "[::1]:9191"]).get().adminListen)
        #expect(v6 == ListenAddress(host: "::1", port: 9191))
        #expect(v6.description == "[::1]:9191")
        let named = try configuration(["ADMIN_LISTEN": "admin.internal:9091"]).get()
        #expect(named.shownSettings(teams: nil).first { $0.name == "ADMIN_LISTEN" }?.value == "admin.internal:9091")
        #expect(
            try configuration(["ADMIN_LISTEN": "off"]).get().shownSettings(teams: nil).first {
                $0.name == "ADMIN_LISTEN"
            }?.value == "off"
        )
        #expect(error(["ADMIN_LISTEN": "localhost"])?.problem.contains("got \"localhost\"") == true)
    }

    @Test func theDefaultsShowAsProxyConfWritesThem() throws {
        let shown = try configuration([:]).get().shownSettings(teams: nil)
        for key in GatewayConfiguration.keys {
            guard let value = key.defaultValue, let line = shown.first(where: { $0.name == key.name }) else { continue }
            #expect(line.value == value, "\(key.name)")
        }
    }
}
