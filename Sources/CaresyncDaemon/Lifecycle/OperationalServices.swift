public import Logging
public import Prometheus
public import ServiceLifecycle
import Synchronization

/// Everything the daemon runs around the sync engine, built from one configuration: the metrics endpoint,
/// SIGHUP reload, the systemd notifier with its watchdog, the health monitor, the metric recorders and
/// each peer's access-token provider.
///
/// ```swift
/// let operations = try OperationalServices(
///     configuration: configuration, loader: loader, environment: environment, registry: registry,
///     tokenTransport: HTTPTokenEndpointTransport(client: httpClient), logLevel: logLevel, logger: logger,
///     status: { engine.statusLine() }, apply: { try await engine.apply($0) })
/// // requests to a peer: try await operations.tokens.provider(for: peer.name)?.accessToken()
/// let group = ServiceGroup(configuration: .init(
///     services: operations.services(around: [engine]), gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// // in the engine, once the state store is open:  try operations.notifier?.notify(.ready)
/// ```
public struct OperationalServices: Sendable {
    /// `$NOTIFY_SOCKET`, when run by systemd.
    public let notifier: SystemdNotifier?
    /// Heartbeats and failures of the engine's loops; drives the watchdog and `/healthz`.
    public let health: HealthMonitor
    /// Where the engine records its metrics.
    public let metrics: CaresyncMetrics
    /// SIGHUP reload; `reload.current` is the configuration in effect.
    public let reload: ConfigurationReloadService
    /// `GET /metrics` and `/healthz`, bound already; `nil` when `metrics.enabled` is false.
    public let metricsServer: MetricsHTTPServer?
    /// `WATCHDOG=1`, `STATUS=…`, `STOPPING=1`.
    public let notifyService: SystemdNotifyService
    /// The `Authorization` source of each peer, kept in step with reloads (a replaced token file is read
    /// again; unchanged OAuth2 peers keep their cached token).
    public let tokens: PeerAccessTokens

    /// - Parameters:
    ///   - configuration: the configuration the daemon starts with.
    ///   - loader: reads the configuration again on SIGHUP.
    ///   - environment: `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`.
    ///   - registry: the Prometheus registry the metrics go to and `/metrics` serves.
    ///   - tokenTransport: carries OAuth2 token requests (``HTTPTokenEndpointTransport``); `nil` only when
    ///     no peer uses `oauth2-client-credentials`.
    ///   - logLevel: follows `log.level` on reload, when given.
    ///   - reloadTrigger: what starts a reload (SIGHUP by default).
    ///   - status: the `systemctl status` line (queue depth, lag).
    ///   - apply: puts a reloaded configuration into effect in the engine; throwing refuses it (and the
    ///     token providers go back to the running configuration).
    /// - Throws: ``MetricsServerError`` when the metrics address cannot be bound, ``AuthError`` when a
    ///   peer's credentials are unusable.
    public init(
        configuration: CaresyncConfiguration,
        loader: ConfigurationLoader,
        environment: [String: String],
        registry: PrometheusCollectorRegistry,
        tokenTransport: (any TokenEndpointTransport)? = nil,
        logLevel: LogLevelControl? = nil,
        logger: Logger,
        reloadTrigger: ConfigurationReloadService.Trigger = .hangupSignal,
        status: @escaping @Sendable () -> String? = { nil },
        apply: @escaping ConfigurationReloadService.Apply
    ) throws {
        let notifier = SystemdNotifier(environment: environment)
        let health = HealthMonitor()
        let metrics = CaresyncMetrics(factory: CaresyncMetrics.prometheusFactory(registry: registry))
        let tokens = try PeerAccessTokens(configuration: configuration, transport: tokenTransport)
        let running = Mutex(configuration)
        self.notifier = notifier
        self.health = health
        self.metrics = metrics
        self.tokens = tokens
        self.reload = ConfigurationReloadService(
            initial: configuration, loader: loader, notifier: notifier, metrics: metrics, trigger: reloadTrigger, logger: logger
        ) { next in
            try tokens.apply(next)
            do {
                try await apply(next)
            } catch {
                try? tokens.apply(running.withLock { $0 })
                throw error
            }
            running.withLock { $0 = next }
            logLevel?.level = next.log.level
        }
        if configuration.metrics.enabled {
            metricsServer = try MetricsHTTPServer(
                listen: configuration.metrics.listen, allowNonLoopback: configuration.metrics.allowNonLoopback, registry: registry,
                health: { health.check() }, logger: logger)
        } else {
            metricsServer = nil
        }
        notifyService = SystemdNotifyService(
            notifier: notifier, watchdogInterval: SystemdNotifier.watchdogPingInterval(environment: environment),
            health: { health.check() }, status: status, logger: logger)
    }

    /// The services for a `ServiceGroup`, in order: metrics endpoint and reload first, then `engine`, the
    /// notifier last. Services stop in reverse order, so at shutdown `STOPPING=1` goes out at once, the
    /// engine drains next, and `/metrics` answers until the end.
    public func services(around engine: [any Service]) -> [any Service] {
        var services: [any Service] = []
        if let metricsServer { services.append(metricsServer) }
        services.append(reload)
        services += engine
        services.append(notifyService)
        return services
    }
}
