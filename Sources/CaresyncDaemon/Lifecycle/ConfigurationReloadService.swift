public import Logging
public import ServiceLifecycle
import Synchronization
import UnixSignals

/// Reloads the configuration on SIGHUP (`systemctl reload caresync`): sends `RELOADING=1`, reads and
/// checks the file again, hands a valid new configuration to the `apply` hook and makes it current, then
/// sends `READY=1`. An invalid file, or a hook that throws, leaves the running configuration in place and
/// logs every problem.
public final class ConfigurationReloadService: Service, Sendable {
    /// What the daemon does with a new, valid configuration (rebuild token providers, peers, log level).
    /// Throwing refuses the new configuration.
    public typealias Apply = @Sendable (CaresyncConfiguration) async throws -> Void

    /// What starts a reload.
    public enum Trigger: Sendable {
        /// SIGHUP (`systemctl reload`). libdispatch installs its handler the first time a signal is
        /// trapped in a process; changing SIGHUP's disposition afterwards (`signal(SIGHUP, SIG_IGN)`)
        /// silences it for good.
        case hangupSignal
        /// Each element of a stream (a control socket, a test).
        case requests(AsyncStream<Void>)
    }

    /// How a reload ended.
    public enum Outcome: Sendable {
        /// The new configuration is current.
        case applied(CaresyncConfiguration)
        /// The file did not change anything.
        case unchanged
        /// The new file is invalid; the running configuration was kept.
        case refused(ConfigurationError)
        /// The apply hook threw; the running configuration was kept.
        case failed(String)
    }

    private let load: @Sendable () async throws(ConfigurationError) -> CaresyncConfiguration
    private let apply: Apply
    private let notifier: SystemdNotifier?
    private let metrics: CaresyncMetrics?
    private let logger: Logger
    private let trigger: Trigger
    private let state: Mutex<CaresyncConfiguration>

    /// - Parameters:
    ///   - initial: the configuration the daemon started with.
    ///   - load: reads the configuration again (usually `loader.load`).
    ///   - notifier: `RELOADING=1` / `READY=1` go here when under systemd.
    ///   - metrics: counts reloads by outcome.
    ///   - trigger: what starts a reload (SIGHUP by default).
    ///   - apply: puts a new configuration into effect.
    public init(
        initial: CaresyncConfiguration,
        load: @escaping @Sendable () async throws(ConfigurationError) -> CaresyncConfiguration,
        notifier: SystemdNotifier?,
        metrics: CaresyncMetrics? = nil,
        trigger: Trigger = .hangupSignal,
        logger: Logger,
        apply: @escaping Apply
    ) {
        self.state = Mutex(initial)
        self.trigger = trigger
        self.load = load
        self.notifier = notifier
        self.metrics = metrics
        self.logger = logger
        self.apply = apply
    }

    /// A reload service reading `loader`'s file.
    public convenience init(
        initial: CaresyncConfiguration,
        loader: ConfigurationLoader,
        notifier: SystemdNotifier?,
        metrics: CaresyncMetrics? = nil,
        trigger: Trigger = .hangupSignal,
        logger: Logger,
        apply: @escaping Apply
    ) {
        self.init(
            initial: initial, load: { () async throws(ConfigurationError) in try await loader.load() }, notifier: notifier,
            metrics: metrics, trigger: trigger, logger: logger, apply: apply)
    }

    /// The configuration in effect.
    public var current: CaresyncConfiguration { state.withLock { $0 } }

    /// Waits for the trigger and reloads on each, until graceful shutdown.
    public func run() async throws {
        switch trigger {
        case .hangupSignal:
            for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
                await reload()
            }
        case .requests(let requests):
            for await _ in requests.cancelOnGracefulShutdown() {
                await reload()
            }
        }
    }

    /// Reloads now (what SIGHUP does).
    @discardableResult
    public func reload() async -> Outcome {
        send(.reloading)
        let outcome: Outcome
        do {
            let candidate = try await load()
            if candidate == current {
                outcome = .unchanged
            } else {
                do {
                    try await apply(candidate)
                    state.withLock { $0 = candidate }
                    outcome = .applied(candidate)
                } catch {
                    outcome = .failed("\(error)")
                }
            }
        } catch {
            outcome = .refused(error)
        }
        report(outcome)
        return outcome
    }

    private func report(_ outcome: Outcome) {
        switch outcome {
        case .applied:
            logger.notice("configuration reloaded")
            metrics?.recordReload(.applied)
            send(.ready, .status("configuration reloaded"))
        case .unchanged:
            logger.info("configuration reloaded; nothing changed")
            metrics?.recordReload(.unchanged)
            send(.ready)
        case .refused(let error):
            logger.error(
                "configuration reload refused; keeping the running configuration",
                metadata: [
                    "file": .string(error.file ?? "-"),
                    "problems": .array(error.problems.map { .string($0.description) }),
                ])
            metrics?.recordReload(.refused)
            send(.ready, .status("reload refused (\(error.problems.count) problems); running configuration kept"))
        case .failed(let reason):
            logger.error("applying the reloaded configuration failed; keeping the running configuration", metadata: ["error": .string(reason)])
            metrics?.recordReload(.failed)
            send(.ready, .status("reload failed; running configuration kept"))
        }
    }

    private func send(_ states: SystemdNotifier.State...) {
        guard let notifier else { return }
        do {
            try notifier.notify(states)
        } catch {
            logger.warning("sd_notify failed", metadata: ["error": .string(error.message)])
        }
    }
}
