import Dispatch
import GatewayCore
import GatewayCurl
import GatewayServer
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `xi-gateway` executable: reads the configuration, wires the pieces, serves until SIGINT or SIGTERM,
/// then stops in order (listener, upstream thread, event loops).
@main
enum XIGateway {
    /// Exit status for a configuration that cannot be used (`EX_CONFIG` of sysexits.h).
    static let configurationExitCode: Int32 = 78

    static func main() async {
        let options: CommandLineOptions
        do {
            options = try CommandLineOptions.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            printError("xi-gateway: \(error.message)\n\n\(CommandLineOptions.usage)")
            exit(64)
        }
        switch options {
        case .help:
            print(CommandLineOptions.usage)
        case .version:
            print("xi-gateway \(GatewayVersion.current)")
        case .run(let configFile):
            await run(configFile: configFile)
        }
    }

    private static func run(configFile: String?) async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "xi-gateway")

        let configuration: GatewayConfiguration
        do {
            let loaded = try await ConfigurationLoader.load(
                explicitFile: configFile,
                environment: environmentVariables()
            )
            configuration = loaded.configuration
            for warning in loaded.warnings { logger.warning("\(warning)") }
        } catch {
            printError("xi-gateway: configuration error: \(error)")
            exit(configurationExitCode)
        }

        let upstream: CurlUpstreamClient
        do {
            upstream = try CurlUpstreamClient(configuration: CurlClientConfiguration(configuration), logger: logger)
        } catch {
            printError("xi-gateway: cannot start the upstream client: \(error)")
            exit(1)
        }
        let cache = ResponseCache(
            maxBytes: configuration.cacheMaxBytes,
            ttlSeconds: configuration.cacheTTLSeconds,
            staleSeconds: configuration.cacheStaleSeconds
        )
        let governor = UpstreamGovernor(
            configuration: UpstreamGovernor.Configuration(
                maxConcurrency: configuration.upstreamMaxConcurrency,
                maxQueue: configuration.upstreamMaxQueue,
                queueTimeout: .milliseconds(Int64(configuration.upstreamQueueTimeoutMilliseconds)),
                backoffMaxSeconds: configuration.upstreamBackoffMaxSeconds
            )
        )
        let service = ListService(
            cache: cache,
            upstream: upstream,
            governor: governor,
            apiKey: configuration.apiKey,
            waitLimit: .milliseconds(Int64(configuration.upstreamTimeoutMilliseconds)),
            logger: logger
        )
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)

        let server: GatewayServer
        do {
            server = try await GatewayServer.start(
                configuration: GatewayServer.Configuration(
                    host: configuration.listenHost,
                    port: configuration.listenPort,
                    idleTimeout: .seconds(Int64(configuration.idleTimeoutSeconds))
                ),
                service: service,
                group: group
            )
        } catch {
            printError(
                "xi-gateway: cannot listen on \(configuration.listenHost):\(configuration.listenPort): \(error)"
            )
            upstream.shutdown()
            try? await group.shutdownGracefully()
            exit(1)
        }

        logger.info(
            "xi-gateway \(GatewayVersion.current) listening",
            metadata: [
                "listen": "http://\(configuration.listenHost):\(server.localPort)",
                "upstream": "\(configuration.upstreamURL)",
                "cache_ttl_seconds": "\(configuration.cacheTTLSeconds)",
                "cache_stale_seconds": "\(configuration.cacheStaleSeconds)",
                "upstream_max_concurrency": "\(configuration.upstreamMaxConcurrency)",
                "cache_max_bytes": "\(configuration.cacheMaxBytes)",
            ]
        )

        let signal = await waitForTerminationSignal()
        logger.info("stopping", metadata: ["signal": "\(signal)"])
        try? await server.close()
        upstream.shutdown()
        try? await group.shutdownGracefully()
        logger.info("stopped")
    }

    /// Suspends until SIGINT or SIGTERM arrives; returns its name.
    private static func waitForTerminationSignal() async -> String {
        let queue = DispatchQueue(label: "xi-gateway.signals")
        let signals = [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")]
        let sources = signals.map { number, _ in
            signal(number, SIG_IGN)
            return DispatchSource.makeSignalSource(signal: number, queue: queue)
        }
        let name = await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            let fired = Atomic<Bool>(false)
            for (source, (_, name)) in zip(sources, signals) {
                source.setEventHandler {
                    if !fired.exchange(true, ordering: .relaxed) { continuation.resume(returning: name) }
                }
                source.resume()
            }
        }
        for source in sources { source.cancel() }
        // A second signal while stopping ends the process at once.
        for (number, _) in signals { signal(number, SIG_DFL) }
        return name
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

    private static func printError(_ message: String) {
        let line = Array((message + "\n").utf8)
        line.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
