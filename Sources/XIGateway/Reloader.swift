import GatewayCore
import GatewayServer
import Logging
import Synchronization

/// Applies a new configuration file while serving: what can change at once does; what needs a restart is
/// named in a log line; a file that cannot be used leaves everything as it was.
final class Reloader: Sendable {
    private let configFile: String?
    private let environment: [String: String]
    private let current: Locked<GatewayConfiguration>
    private let cache: ResponseCache
    private let governor: any UpstreamSlots
    private let context: ServerContext
    private let levelControl: LogLevelControl
    private let tls: ListenerTLS?
    private let metrics: GatewayMetrics?
    private let logger: Logger

    init(
        configFile: String?,
        environment: [String: String],
        current: GatewayConfiguration,
        cache: ResponseCache,
        governor: any UpstreamSlots,
        context: ServerContext,
        levelControl: LogLevelControl,
        tls: ListenerTLS? = nil,
        metrics: GatewayMetrics? = nil,
        logger: Logger
    ) {
        self.tls = tls
        self.metrics = metrics
        self.configFile = configFile
        self.environment = environment
        self.current = Locked(current)
        self.cache = cache
        self.governor = governor
        self.context = context
        self.levelControl = levelControl
        self.logger = logger
    }

    /// Reads the file again and applies it.
    func reload() async {
        let loaded: ConfigurationLoader.Loaded
        do {
            loaded = try await ConfigurationLoader.load(explicitFile: configFile, environment: environment)
        } catch {
            logger.error("reload failed; the configuration in force is unchanged", metadata: ["error": "\(error)"])
            return
        }
        for warning in loaded.warnings { logger.warning("\(warning)") }
        var new = loaded.configuration
        var teams = loaded.teams
        let old = current.withLock { $0 }
        let teamsBefore = context.versionedSettings.settings.teams
        var needsRestart: [String] = []
        if let oldFile = old.clientsFile, new.clientsFile == nil {
            // Going from teams to open would let anyone who reaches the port spend the key: never on a
            // reload. The teams in force stay until a restart says so.
            new.clientsFile = oldFile
            teams = teamsBefore
            needsRestart.append("CLIENTS_FILE")
            logger.warning(
                "CLIENTS_FILE was removed: the gateway stays closed to unknown clients until a restart",
                metadata: ["clients_file": "\(oldFile)", "teams": "\(teamsBefore?.teams.count ?? 0)"]
            )
        } else if old.clientsFile != new.clientsFile {
            // The new file was read and is valid (loading would have failed otherwise).
            logger.notice(
                "teams file changed",
                metadata: [
                    "clients_file_before": "\(old.clientsFile ?? "none")",
                    "clients_file": "\(new.clientsFile ?? "none")",
                    "teams_before": "\(teamsBefore.map { String($0.teams.count) } ?? "open")",
                    "teams": "\(teams.map { String($0.teams.count) } ?? "open")",
                ]
            )
        }
        if context.sharedTier != nil, new.apiKey != old.apiKey {
            // The shared tier's keys, locks, leases and back-off in Redis are named after the key each
            // replica started with: a replica on a new key would share them with replicas still on the old
            // one. The key in force stays until a restart, which every replica does in turn.
            new.apiKey = old.apiKey
            needsRestart.append("ELEVENLABS_API_KEY")
        } else if context.service.upstreamKey.replace(with: new.apiKey) {
            // Upstream requests from now on carry the new key; those under way keep theirs. Pages fetched
            // with the old key are its answers: they are keyed by it and no longer found.
            logger.notice("the upstream key changed: new upstream requests use it")
        }
        current.withLock { $0 = new }
        cache.ttlSeconds = new.cacheTTLSeconds
        cache.staleSeconds = new.cacheStaleSeconds
        governor.update(XIGateway.governorConfiguration(new))
        levelControl.current = Logger.Level(rawValue: new.logLevel) ?? .info
        context.update(
            .init(
                accessLog: new.accessLog,
                adminToken: new.adminToken,
                teams: teams,
                defaultUpstreamPerMinute: new.clientUpstreamPerMinute,
                clientCacheControl: new.clientCacheControl
            )
        )

        reloadCertificate(new.tls)
        needsRestart += Self.restartKeys(old: old, new: new)
        logger.info(
            "configuration reloaded",
            metadata: [
                "cache_ttl_seconds": "\(new.cacheTTLSeconds)",
                "cache_stale_seconds": "\(new.cacheStaleSeconds)",
                "upstream_max_concurrency": "\(new.upstreamMaxConcurrency)",
                "log_level": "\(new.logLevel)",
                "teams": "\(teams.map { String($0.teams.count) } ?? "open")",
            ]
        )
        if !needsRestart.isEmpty {
            logger.warning(
                "changed keys take effect only after a restart",
                metadata: ["keys": "\(needsRestart.joined(separator: ","))"]
            )
        }
    }

    /// Reads the TLS pair again, the usual way to rotate it: new connections get it; a pair that cannot be
    /// used is reported, and the one in force stays.
    private func reloadCertificate(_ settings: ListenerTLSSettings?) {
        guard let tls, let settings else { return }
        let before = tls.identity
        switch tls.reload(settings) {
        case .success(let identity):
            metrics?.setTLSCertificateExpiry(secondsSince1970: identity.notValidAfter)
            logger.notice(
                "TLS certificate reloaded: new connections get it",
                metadata: [
                    "certificate": "\(identity.subject)",
                    "expires": "\(HTTPDate.format(identity.notValidAfter))",
                    "certificate_before": "\(before.subject)",
                    "expires_before": "\(HTTPDate.format(before.notValidAfter))",
                ]
            )
        case .failure(let error):
            logger.error(
                "TLS certificate not reloaded; the one in force stays",
                metadata: [
                    "error": "\(error)", "certificate": "\(before.subject)",
                    "expires": "\(HTTPDate.format(before.notValidAfter))",
                ]
            )
        }
    }

    /// The keys whose new values cannot be applied while serving and differ from the ones in force.
    static func restartKeys(old: GatewayConfiguration, new: GatewayConfiguration) -> [String] {
        var keys: [String] = []
        if old.listenHost != new.listenHost { keys.append("LISTEN_HOST") }
        if old.listenPort != new.listenPort { keys.append("LISTEN_PORT") }
        if old.adminListen != new.adminListen { keys.append("ADMIN_LISTEN") }
        if old.upstreamURL != new.upstreamURL { keys.append("UPSTREAM_URL") }
        if old.upstreamProxy != new.upstreamProxy { keys.append("UPSTREAM_PROXY") }
        if old.upstreamTimeoutMilliseconds != new.upstreamTimeoutMilliseconds { keys.append("UPSTREAM_TIMEOUT_MS") }
        if old.upstreamConnectTimeoutMilliseconds != new.upstreamConnectTimeoutMilliseconds {
            keys.append("UPSTREAM_CONNECT_TIMEOUT_MS")
        }
        if old.cacheMaxBytes != new.cacheMaxBytes { keys.append("CACHE_MAX_BYTES") }
        if old.idleTimeoutSeconds != new.idleTimeoutSeconds { keys.append("IDLE_TIMEOUT_SECONDS") }
        if old.maxConnections != new.maxConnections { keys.append("MAX_CONNECTIONS") }
        if old.eventLoopThreadCount != new.eventLoopThreadCount { keys.append("EVENT_LOOP_THREADS") }
        if old.requestHeadTimeoutSeconds != new.requestHeadTimeoutSeconds {
            keys.append("REQUEST_HEAD_TIMEOUT_SECONDS")
        }
        if old.upstreamMaxBodyBytes != new.upstreamMaxBodyBytes { keys.append("UPSTREAM_MAX_BODY_BYTES") }
        if old.shutdownGraceSeconds != new.shutdownGraceSeconds { keys.append("SHUTDOWN_GRACE_SECONDS") }
        if old.logFormat != new.logFormat { keys.append("LOG_FORMAT") }
        if old.passthrough != new.passthrough { keys.append("PASSTHROUGH") }
        if old.compression != new.compression { keys.append("COMPRESSION") }
        if old.redis != new.redis { keys.append("REDIS_URL") }
        if old.redisTLSCAFile != new.redisTLSCAFile { keys.append("REDIS_TLS_CA_FILE") }
        if old.redisTimeoutMilliseconds != new.redisTimeoutMilliseconds { keys.append("REDIS_TIMEOUT_MS") }
        if old.redisKeyPrefix != new.redisKeyPrefix { keys.append("REDIS_KEY_PREFIX") }
        if old.fallbackMaxConcurrency != new.fallbackMaxConcurrency { keys.append("FALLBACK_MAX_CONCURRENCY") }
        // The pair itself is read again on every reload; only turning TLS on or off needs a restart.
        if (old.tls == nil) != (new.tls == nil) { keys.append("TLS_CERT_FILE") }
        if old.adminTLS != new.adminTLS { keys.append("ADMIN_TLS") }
        return keys
    }
}
