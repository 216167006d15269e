import GatewayCore
import Logging
import NIOCore
import Synchronization

/// Everything a connection needs besides the list service: readiness, the settings a reload may change,
/// the access log, metrics, and what the admin API reads.
public final class ServerContext: Sendable {
    /// What a configuration reload can change while serving.
    public struct Settings: Sendable {
        /// Write one line per request.
        public var accessLog: Bool
        /// Turns the admin API on.
        public var adminToken: Secret?
        /// The teams allowed in; `nil` leaves the gateway open.
        public var teams: TeamRegistry?
        /// A team's upstream budget per minute unless its line says otherwise; `nil`: unlimited.
        public var defaultUpstreamPerMinute: Int?
        /// Whether a list request's `Cache-Control` directives are honoured.
        public var clientCacheControl: Bool

        /// Creates settings.
        public init(
            accessLog: Bool,
            adminToken: Secret?,
            teams: TeamRegistry? = nil,
            defaultUpstreamPerMinute: Int? = nil,
            clientCacheControl: Bool = true
        ) {
            self.clientCacheControl = clientCacheControl
            self.accessLog = accessLog
            self.adminToken = adminToken
            self.teams = teams
            self.defaultUpstreamPerMinute = defaultUpstreamPerMinute
        }
    }

    /// Answers list requests.
    public let service: ListService
    /// The page cache (purge and statistics).
    public let cache: any PageStore
    /// The upstream governor (statistics).
    public let governor: any UpstreamSlots
    /// The tier replicas share, when `REDIS_URL` is set.
    public let sharedTier: (any SharedTier)?
    /// Metrics, when they are collected.
    public let metrics: GatewayMetrics?
    /// Renders the metrics for `GET /metrics`; `nil` answers 404 there.
    public let renderMetrics: (@Sendable () -> [UInt8])?
    /// Where access log lines go.
    public let accessLogger: Logger
    /// `accessLogger`'s handler when it is the gateway's own, which writes access lines without metadata
    /// dictionaries (``GatewayLogHandler/logAccess(_:)``).
    let accessLogHandler: GatewayLogHandler?
    /// Forwards the uncached routes; `nil` when `PASSTHROUGH=off` (they are then 404).
    public let passthrough: PassthroughService?

    /// When the context was made, in seconds since 1970 (the status page's uptime).
    public let startedAt: Int
    /// The last minute of counters, for the status page (``startStatusSampler(on:)``).
    let statusHistory: Locked<StatusHistory>
    private let sampler = Locked<(task: RepeatedTask?, users: Int)>((nil, 0))

    private let ready = Atomic<Bool>(false)
    private let settings: Locked<(settings: Settings, version: Int)>
    /// Moves on every ``update(_:)``: a connection keeps the settings it read, and reads them again only
    /// when this has moved. A lock taken by every request of every event loop would cost more than the
    /// rest of a cache hit's bookkeeping.
    private let version = Atomic<Int>(0)

    /// Creates a context; it starts not ready (see ``setReady(_:)``).
    public init(
        service: ListService,
        cache: any PageStore,
        governor: any UpstreamSlots,
        settings: Settings,
        accessLogger: Logger,
        metrics: GatewayMetrics? = nil,
        renderMetrics: (@Sendable () -> [UInt8])? = nil,
        passthrough: PassthroughService? = nil,
        sharedTier: (any SharedTier)? = nil
    ) {
        self.sharedTier = sharedTier
        self.passthrough = passthrough
        self.service = service
        self.cache = cache
        self.governor = governor
        self.settings = Locked((settings, 0))
        self.accessLogger = accessLogger
        self.accessLogHandler = accessLogger.handler as? GatewayLogHandler
        self.metrics = metrics
        self.renderMetrics = renderMetrics
        self.startedAt = SystemCacheClock().secondsSince1970()
        self.statusHistory = Locked(StatusHistory(origin: StatusSample(at: NIODeadline.now().uptimeNanoseconds)))
        metrics?.prepare(teams: settings.teams?.teams.map(\.name) ?? [])
    }

    /// Reads the counters the status page shows (cheap: a few locks, none the request path waits on long).
    func statusSample(at now: UInt64 = NIODeadline.now().uptimeNanoseconds) -> StatusSample {
        let lookups = service.lookupStatistics
        return StatusSample(
            at: now,
            lookups: lookups.lookups,
            hits: lookups.hits,
            upstream: metrics?.upstreamTotals ?? .init(),
            teams: service.budgetLedger.counts
        )
    }

    /// Samples the counters once a second on `eventLoop`, for the status page's last minute, until as many
    /// ``stopStatusSampler()`` as starts: every listener of a process shares one context and starts it, and
    /// the page keeps moving until the last listener stops (the admin one, which shows the drain).
    public func startStatusSampler(on eventLoop: any EventLoop) {
        sampler.withLock { sampler in
            sampler.users += 1
            guard sampler.task == nil else { return }
            sampler.task = eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) {
                [weak self] task in
                guard let self else { return task.cancel() }
                let sample = self.statusSample()
                self.statusHistory.withLock { $0.record(sample) }
            }
        }
    }

    /// Stops the sampler once every listener that started it has stopped.
    public func stopStatusSampler() {
        sampler.withLock { sampler in
            sampler.users = max(0, sampler.users - 1)
            guard sampler.users == 0 else { return }
            sampler.task?.cancel()
            sampler.task = nil
        }
    }

    /// Whether `/readyz` says 200.
    public var isReady: Bool { ready.load(ordering: .relaxed) }

    /// Sets readiness: on once the listener and the upstream loop run, off when shutting down.
    public func setReady(_ value: Bool) { ready.store(value, ordering: .relaxed) }

    /// The settings in force.
    public var currentSettings: Settings { settings.withLock { $0.settings } }

    /// The settings in force and their version.
    public var versionedSettings: (settings: Settings, version: Int) { settings.withLock { $0 } }

    /// The version of the settings in force: when it equals the one read with them, they are still in force.
    public var settingsVersion: Int { version.load(ordering: .acquiring) }

    /// Replaces the settings (a reload). A team the new teams file adds has its series at zero at once.
    public func update(_ newSettings: Settings) {
        metrics?.prepare(teams: newSettings.teams?.teams.map(\.name) ?? [])
        settings.withLock { current in
            current = (newSettings, current.version + 1)
            version.store(current.version, ordering: .releasing)
        }
    }
}
