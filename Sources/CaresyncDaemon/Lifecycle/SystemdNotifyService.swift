public import Logging
public import ServiceLifecycle

/// Keeps systemd informed while the daemon runs: `WATCHDOG=1` every half `WATCHDOG_USEC` while the health
/// probe says healthy (a stalled daemon stops pinging and systemd restarts it), `STATUS=…` whenever the
/// status line changes, and `STOPPING=1` as soon as graceful shutdown reaches it.
///
/// `READY=1` belongs to whoever knows start-up finished (the sync engine, once the state store is open):
/// call `notifier.notify(.ready)` there. Place this service **last** in the `ServiceGroup`: services shut
/// down in reverse order, so it is the first told and `STOPPING=1` goes out before the engine drains.
public struct SystemdNotifyService: Service {
    private let notifier: SystemdNotifier?
    private let watchdogInterval: Duration?
    private let statusInterval: Duration
    private let health: @Sendable () -> HealthStatus
    private let status: @Sendable () -> String?
    private let logger: Logger

    /// - Parameters:
    ///   - notifier: where to send; `nil` (not under systemd) makes the service idle until shutdown.
    ///   - watchdogInterval: how often to ping (``SystemdNotifier/watchdogPingInterval(environment:)``);
    ///     `nil` when systemd set no watchdog.
    ///   - statusInterval: how often the status line is sampled.
    ///   - health: the probe; no ping is sent while it reports problems.
    ///   - status: the status line (queue depth, lag), or `nil` for none.
    public init(
        notifier: SystemdNotifier?,
        watchdogInterval: Duration?,
        statusInterval: Duration = .seconds(5),
        health: @escaping @Sendable () -> HealthStatus,
        status: @escaping @Sendable () -> String? = { nil },
        logger: Logger
    ) {
        self.notifier = notifier
        self.watchdogInterval = watchdogInterval
        self.statusInterval = statusInterval
        self.health = health
        self.status = status
        self.logger = logger
    }

    public func run() async throws {
        guard let notifier else {
            try? await gracefulShutdown()
            return
        }
        // The loop ends only when shutdown (or cancellation) interrupts its sleep; STOPPING=1 follows it, so
        // no ping can arrive after it.
        try? await cancelWhenGracefulShutdown { try await self.loop(notifier) }
        send([.stopping], to: notifier)
    }

    private func loop(_ notifier: SystemdNotifier) async throws {
        let clock = ContinuousClock()
        var lastStatus: String?
        var nextStatus = clock.now
        var nextPing = clock.now
        var wasHealthy = true
        while true {
            let now = clock.now
            if let watchdogInterval, now >= nextPing {
                let status = health()
                if status.isHealthy {
                    send([.watchdog], to: notifier)
                    if !wasHealthy { logger.notice("healthy again; watchdog pings resumed") }
                } else if wasHealthy {
                    logger.error(
                        "unhealthy; withholding watchdog pings so systemd restarts the service",
                        metadata: ["problems": .string(status.problems.joined(separator: "; "))])
                }
                wasHealthy = status.isHealthy
                nextPing = now.advanced(by: watchdogInterval)
            }
            if now >= nextStatus {
                if let line = status(), line != lastStatus {
                    send([.status(line)], to: notifier)
                    lastStatus = line
                }
                nextStatus = now.advanced(by: statusInterval)
            }
            let wake = watchdogInterval == nil ? nextStatus : min(nextPing, nextStatus)
            try await clock.sleep(until: wake)
        }
    }

    private func send(_ states: [SystemdNotifier.State], to notifier: SystemdNotifier) {
        do {
            try notifier.notify(states)
        } catch {
            logger.warning("sd_notify failed", metadata: ["error": .string(error.message)])
        }
    }
}
