import CaresyncHTTP
import Foundation
public import Logging
import Prometheus
import ServiceLifecycle
import StateStore
import Synchronization
import SyncEngine
import UnixSignals

/// `caresync daemon`: the state store, the HTTP client, the engine and the operational services in one
/// `ServiceGroup`, until SIGTERM or SIGINT (DESIGN §6).
///
/// Order of start: open the state store as writer (lock, quick_check, migrations, leases released) →
/// register the peers → `READY=1` → run. Each peer's `metadata` is checked before its first pull: a peer
/// that is not FHIR 4.0.1 is refused and the others go on. On SIGTERM: `STOPPING=1`, the engine stops
/// pulling and merging, in-flight pushes finish and are recorded, the store is closed; exit 0.
public struct DaemonRuntime {
    /// Why the daemon could not start.
    public struct StartError: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Runs the daemon until a termination signal; returns when everything has stopped.
    /// - Parameters:
    ///   - configuration: the loaded, valid configuration.
    ///   - loader: reads it again on SIGHUP.
    ///   - environment: `NOTIFY_SOCKET`, `WATCHDOG_USEC`, … .
    ///   - logLevel: follows `log.level` on reload.
    public static func run(
        configuration: CaresyncConfiguration, loader: ConfigurationLoader, environment: [String: String],
        logLevel: LogLevelControl?, logger: Logger
    ) async throws {
        let store: SQLiteStateStore
        do {
            store = try SQLiteStateStore.open(directory: configuration.state.path, access: .writer)
        } catch {
            throw StartError(message: "cannot open the state store: \(error)")
        }
        defer { store.close() }
        if store.recovery.leasesReleased > 0 {
            logger.notice("released leases left by a previous process", metadata: ["count": "\(store.recovery.leasesReleased)"])
        }
        let http = HTTPClient()
        defer { http.shutdown() }
        let registry = PrometheusCollectorRegistry()
        let running = Mutex<(engine: SyncEngine?, configuration: CaresyncConfiguration)>((nil, configuration))
        let operations = try OperationalServices(
            configuration: configuration, loader: loader, environment: environment, registry: registry,
            tokenTransport: HTTPTokenEndpointTransport(client: http), logLevel: logLevel, logger: logger,
            status: { running.withLock { $0.engine?.statusLine() } },
            apply: { next in
                let current = running.withLock { $0.configuration }
                guard current.canReloadLive(into: next) else {
                    throw ConfigurationApplyError(
                        message: "changes to peers, sync settings, the state directory or the policy take effect at restart "
                            + "(systemctl restart caresync); credentials, TLS files and log.level reload live")
                }
                running.withLock { $0.configuration = next }
            })
        let engine = try SyncEngine.make(
            configuration: configuration, store: store, http: http, tokens: operations.tokens, metrics: operations.metrics,
            observer: MetricsSyncObserver(metrics: operations.metrics, health: operations.health), logger: logger)
        running.withLock { $0.engine = engine }
        do {
            try await engine.start()
        } catch {
            throw StartError(message: "cannot register the peers in the state store: \(error)")
        }
        logger.notice(
            "caresync daemon ready",
            metadata: ["peers": "\(configuration.peers.count)", "state": "\(configuration.state.path)"])
        do {
            try operations.notifier?.notify(.ready, .status("started; \(configuration.peers.count) peers"))
        } catch {
            logger.warning("sd_notify failed", metadata: ["error": "\(error.message)"])
        }
        let group = ServiceGroup(
            configuration: .init(
                services: operations.services(around: [SyncEngineService(engine: engine, logger: logger)]).map {
                    .init(service: $0)
                },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        logger.notice("caresync daemon stopped")
    }
}
