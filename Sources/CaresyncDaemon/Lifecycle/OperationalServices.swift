public import Logging
public import Prometheus
public import ServiceLifecycle

/// Everything the daemon runs around the sync engine, built from one configuration: the metrics endpoint,
/// SIGHUP reload, the systemd notifier with its watchdog, the health monitor and the metric recorders.
///
/// ```swift
/// let operations = try OperationalServices(
///     configuration: configuration, loader: loader, registry: registry, logLevel: logLevel, logger: logger,
///     status: { engine.statusLine() }, apply: { try await engine.apply($0) })
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

    /// - Parameters:
    ///   - configuration: the configuration the daemon starts with.
    ///   - loader: reads the configuration again on SIGHUP.
    ///   - environment: `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`.
    ///   - registry: the Prometheus registry the metrics go to and `/metrics` serves.
    ///   - logLevel: follows `log.level` on reload, when given.
    ///   - reloadTrigger: what starts a reload (SIGHUP by default).
    ///   - status: the `systemctl status` line (queue depth, lag).
    ///   - apply: puts a reloaded configuration into effect in the engine; throwing refuses it.
    public init(
        configuration: CaresyncConfiguration,
        loader: ConfigurationLoader,
        environment: [String: String],
        registry: PrometheusCollectorRegistry,
        logLevel: LogLevelControl? = nil,
        logger: Logger,
        reloadTrigger: ConfigurationReloadService.Trigger = .hangupSignal,
        status: @escaping @Sendable () -> String? = { nil },
        apply: @escaping ConfigurationReloadService.Apply
    ) throws(MetricsServerError) {
        let notifier = SystemdNotifier(environment: environment)
        let health = HealthMonitor()
        let metrics = CaresyncMetrics(factory: CaresyncMetrics.prometheusFactory(registry: registry))
        self.notifier = notifier
        self.health = health
        self.metrics = metrics
        self.reload = ConfigurationReloadService(
            initial: configuration, loader: loader, notifier: notifier, metrics: metrics, trigger: reloadTrigger, logger: logger
        ) { next in
            try await apply(next)
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
