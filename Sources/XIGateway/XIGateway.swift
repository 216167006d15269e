import Dispatch
import GatewayCore
import GatewayCurl
import GatewayServer
import GatewayShared
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The gateway's start: reads the configuration, wires the pieces, and runs them as services until SIGTERM
/// or SIGINT; SIGHUP reloads the configuration. The command line is in `Commands.swift`.
enum XIGateway {
    /// Exit status for a configuration that cannot be used (`EX_CONFIG` of sysexits.h).
    static let configurationExitCode: Int32 = 78
    /// Connections the admin listener keeps open at once: scrapers, probes and an operator's browser.
    static let adminMaxConnections = 64

    /// Like `nginx -t` and `-T`: loads exactly as ``run(configFile:)`` does, prints the settings in force and
    /// `configuration ok`, or the same one-line error and exit status 78.
    static func checkConfig(configFile: String?) async {
        let loaded: ConfigurationLoader.Loaded
        do {
            loaded = try await ConfigurationLoader.load(explicitFile: configFile, environment: environmentVariables())
        } catch {
            printError("xi-gateway: configuration error: \(error)")
            exit(configurationExitCode)
        }
        for warning in loaded.warnings { printError("xi-gateway: warning: \(warning)") }
        for (name, value) in loaded.configuration.shownSettings(teams: loaded.teams?.teams.count) {
            print("\(name)=\(value)")
        }
        if loaded.configuration.redis?.usesTLS == true {
            do {
                _ = try RedisTLS(caFile: loaded.configuration.redisTLSCAFile)
            } catch {
                printError("xi-gateway: configuration error: \(error)")
                exit(configurationExitCode)
            }
        }
        if let settings = loaded.configuration.tls {
            do {
                let identity = try ListenerTLS.load(settings)
                print("TLS certificate: \(identity.subject); expires \(HTTPDate.format(identity.notValidAfter))")
            } catch {
                printError("xi-gateway: configuration error: \(error)")
                exit(configurationExitCode)
            }
        }
        print("configuration ok")
    }

    static func run(configFile: String?) async {
        let environment = environmentVariables()
        let loaded: ConfigurationLoader.Loaded
        do {
            loaded = try await ConfigurationLoader.load(explicitFile: configFile, environment: environment)
        } catch {
            printError("xi-gateway: configuration error: \(error)")
            exit(configurationExitCode)
        }
        let configuration = loaded.configuration

        let levelControl = LogLevelControl(Logger.Level(rawValue: configuration.logLevel) ?? .info)
        let format: GatewayLogHandler.Format = configuration.logFormat == .json ? .json : .text
        LoggingSystem.bootstrap { label in GatewayLogHandler(label: label, format: format, control: levelControl) }
        let logger = Logger(label: "xi-gateway")
        for warning in loaded.warnings { logger.warning("\(warning)") }

        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(registry: registry, libcurlVersion: CurlUpstreamClient.libcurlVersion)
        metrics.setCacheBound(bytes: configuration.cacheMaxBytes)

        var tls: ListenerTLS?
        do {
            if let settings = configuration.tls { tls = try ListenerTLS(settings) }
        } catch {
            printError("xi-gateway: configuration error: \(error)")
            BufferedOutput.standardOutput.flush()
            exit(configurationExitCode)
        }
        if let identity = tls?.identity {
            metrics.setTLSCertificateExpiry(secondsSince1970: identity.notValidAfter)
        }

        let upstream: CurlUpstreamClient
        do {
            upstream = try CurlUpstreamClient(configuration: CurlClientConfiguration(configuration), logger: logger)
        } catch {
            printError("xi-gateway: cannot start the upstream client: \(error)")
            BufferedOutput.standardOutput.flush()
            exit(1)
        }
        let cache = ResponseCache(
            maxBytes: configuration.cacheMaxBytes,
            ttlSeconds: configuration.cacheTTLSeconds,
            staleSeconds: configuration.cacheStaleSeconds
        )
        let eventLoopThreads = configuration.eventLoopThreads(cores: System.coreCount)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoopThreads)
        var redisTLS: RedisTLS?
        do {
            if configuration.redis?.usesTLS == true { redisTLS = try RedisTLS(caFile: configuration.redisTLSCAFile) }
        } catch {
            printError("xi-gateway: configuration error: \(error)")
            BufferedOutput.standardOutput.flush()
            exit(configurationExitCode)
        }
        let shared = configuration.redis.map { endpoint in
            SharedWiring(
                endpoint: endpoint,
                configuration: configuration,
                cache: cache,
                group: group,
                tls: redisTLS,
                logger: logger
            )
        }
        let pages: any PageStore = shared.map { TieredPageStore(first: cache, shared: $0.tier) } ?? cache
        let governor: any UpstreamSlots =
            shared?.governor ?? UpstreamGovernor(configuration: governorConfiguration(configuration))
        let budgets = TeamBudgets()
        let service = ListService(
            cache: pages,
            upstream: upstream,
            governor: governor,
            apiKey: configuration.apiKey,
            waitLimit: .milliseconds(Int64(configuration.upstreamTimeoutMilliseconds)),
            logger: logger,
            metrics: metrics,
            budgets: budgets,
            shared: shared?.tier,
            compression: configuration.compression,
            maxBodyBytes: configuration.upstreamMaxBodyBytes
        )
        let passthrough =
            configuration.passthrough
            ? PassthroughService(
                upstream: upstream,
                governor: governor,
                cache: pages,
                budgets: budgets,
                key: service.upstreamKey,
                logger: logger,
                metrics: metrics,
                shared: shared?.tier
            ) : nil
        let context = ServerContext(
            service: service,
            cache: pages,
            governor: governor,
            settings: .init(
                accessLog: configuration.accessLog,
                adminToken: configuration.adminToken,
                teams: loaded.teams,
                defaultUpstreamPerMinute: configuration.clientUpstreamPerMinute,
                clientCacheControl: configuration.clientCacheControl
            ),
            accessLogger: Logger(label: "access"),
            metrics: metrics,
            renderMetrics: {
                var bytes: [UInt8] = []
                registry.emit(into: &bytes)
                return bytes
            },
            passthrough: passthrough,
            sharedTier: shared?.tier
        )

        let server: GatewayServer
        let adminServer: GatewayServer?
        var apiServer: GatewayServer?
        var listening = ListenAddress(host: configuration.listenHost, port: configuration.listenPort)
        do {
            server = try await GatewayServer.start(
                configuration: listener(
                    configuration,
                    at: ListenAddress(host: configuration.listenHost, port: configuration.listenPort),
                    maxConnections: configuration.maxConnections,
                    role: configuration.adminListen == nil ? .combined : .api,
                    tls: tls
                ),
                context: context,
                group: group
            )
            apiServer = server
            if let admin = configuration.adminListen {
                listening = admin
                adminServer = try await GatewayServer.start(
                    configuration: listener(
                        configuration,
                        at: admin,
                        maxConnections: Self.adminMaxConnections,
                        role: .admin,
                        tls: configuration.adminTLS ? tls : nil
                    ),
                    context: context,
                    group: group
                )
            } else {
                adminServer = nil
            }
        } catch {
            printError("xi-gateway: cannot listen on \(listening): \(error)")
            try? await apiServer?.close()
            upstream.shutdown()
            await shared?.shutdown()
            try? await group.shutdownGracefully()
            BufferedOutput.standardOutput.flush()
            exit(1)
        }
        shared?.tier.start()
        context.setReady(true)

        logger.info(
            "xi-gateway \(GatewayVersion.current) listening",
            metadata: [
                "listen": "\(tls == nil ? "http" : "https")://\(configuration.listenHost):\(server.localPort)",
                "admin_listen":
                    "\(adminServer.map { "\(configuration.adminTLS ? "https" : "http")://\(ListenAddress(host: configuration.adminListen?.host ?? "", port: $0.localPort))" } ?? "off")",
                "tls":
                    "\(tls.map { "\($0.identity.subject), expires \(HTTPDate.format($0.identity.notValidAfter)), TLS \(configuration.tls?.minimumVersion.rawValue ?? "") or later" } ?? "off")",
                "upstream": "\(configuration.upstreamURL)",
                "upstream_proxy": "\(configuration.upstreamProxy.map { RedactedURL.shown($0.revealed) } ?? "none")",
                "cache_ttl_seconds": "\(configuration.cacheTTLSeconds)",
                "cache_stale_seconds": "\(configuration.cacheStaleSeconds)",
                "cache_max_bytes": "\(configuration.cacheMaxBytes)",
                "upstream_max_concurrency": "\(configuration.upstreamMaxConcurrency)",
                "event_loop_threads": "\(eventLoopThreads)",
                "admin_api": "\(configuration.adminToken == nil ? "off" : "on")",
                "clients":
                    "\(loaded.teams.map { "\($0.teams.count) teams" } ?? "open: no CLIENTS_FILE, anyone who reaches the port may use the key")",
                "passthrough": "\(configuration.passthrough ? "on" : "off")",
                "shared_tier": "\(configuration.redis.map { "\($0) prefix \(configuration.redisKeyPrefix)" } ?? "off")",
                "libcurl": "\(CurlUpstreamClient.libcurlVersion)",
            ]
        )

        let reloader = Reloader(
            configFile: configFile,
            environment: environment,
            current: configuration,
            cache: cache,
            governor: governor,
            context: context,
            levelControl: levelControl,
            tls: tls,
            metrics: metrics,
            logger: logger
        )
        let services = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    GatewayService(
                        server: server,
                        adminServer: adminServer,
                        upstream: upstream,
                        grace: .seconds(Int64(configuration.shutdownGraceSeconds)),
                        shared: shared,
                        logger: logger
                    ),
                    ReloadService(reloader: reloader),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await services.run()
        } catch {
            logger.error("stopped with an error", metadata: ["error": "\(error)"])
        }
        try? await group.shutdownGracefully()
        logger.info("stopped")
        BufferedOutput.standardOutput.flush()
    }

    /// A listener's settings: its address, connection limit and role; the timeouts are the configuration's.
    private static func listener(
        _ configuration: GatewayConfiguration,
        at address: ListenAddress,
        maxConnections: Int,
        role: ListenerRole,
        tls: ListenerTLS?
    ) -> GatewayServer.Configuration {
        GatewayServer.Configuration(
            host: address.host,
            port: address.port,
            idleTimeout: .seconds(Int64(configuration.idleTimeoutSeconds)),
            maxConnections: maxConnections,
            requestHeadTimeout: .seconds(Int64(configuration.requestHeadTimeoutSeconds)),
            role: role,
            tls: tls
        )
    }

    static func governorConfiguration(_ configuration: GatewayConfiguration) -> UpstreamGovernor.Configuration {
        UpstreamGovernor.Configuration(
            maxConcurrency: configuration.upstreamMaxConcurrency,
            maxQueue: configuration.upstreamMaxQueue,
            queueTimeout: .milliseconds(Int64(configuration.upstreamQueueTimeoutMilliseconds)),
            backoffMaxSeconds: configuration.upstreamBackoffMaxSeconds
        )
    }

    private static func environmentVariables() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }

    static func printError(_ message: String) {
        let line = Array((message + "\n").utf8)
        line.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}

/// Serves until graceful shutdown is requested, then drains: readiness off, no new connections, requests
/// in flight get the grace period, and only then does the upstream thread stop.
struct GatewayService: Service {
    let server: GatewayServer
    let adminServer: GatewayServer?
    let upstream: CurlUpstreamClient
    let grace: TimeAmount
    let shared: SharedWiring?
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info(
            "stopping: requests in flight may finish",
            metadata: [
                "grace_seconds": "\(grace.nanoseconds / 1_000_000_000)", "connections": "\(server.connectionCount)",
            ]
        )
        await server.shutdown(grace: grace)
        // The admin listener serves until the API listener has drained: a scrape then still sees the drain.
        await adminServer?.shutdown(grace: .seconds(1))
        await shared?.shutdown()
        // pthread_join blocks: keep it off the concurrency pool.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                upstream.shutdown()
                continuation.resume()
            }
        }
    }
}

/// Reloads the configuration on each SIGHUP until shutdown.
struct ReloadService: Service {
    let reloader: Reloader

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            await reloader.reload()
        }
    }
}
