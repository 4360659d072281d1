import Synchronization

/// Whether the daemon is working, and if not, why.
public struct HealthStatus: Sendable, Equatable {
    /// One line per failing or stalled component (`sync: no heartbeat for 95 s`).
    public var problems: [String]
    /// One line per condition a restart would not cure (`state-store: the state directory is full`): the
    /// daemon waits it out, so the watchdog keeps pinging, but `/healthz` reports it.
    public var degraded: [String]

    /// A status with `problems` (none: healthy) and `degraded` conditions.
    public init(problems: [String] = [], degraded: [String] = []) {
        self.problems = problems
        self.degraded = degraded
    }

    /// No problems (degraded conditions aside): the watchdog keeps pinging.
    public var isHealthy: Bool { problems.isEmpty }

    /// A healthy status.
    public static let healthy = HealthStatus()
}

/// Liveness from heartbeats: each long-running component (the sync loop per peer, the queue drainer)
/// beats after each unit of progress and counts as stalled once its deadline passes without one. A hung
/// loop cannot report itself; a missed heartbeat can. The watchdog pings systemd and `/healthz` answers
/// 200 only while no component is stalled or failed.
public final class HealthMonitor: Sendable {
    private struct Component {
        var deadline: ContinuousClock.Instant?
        var failure: String?
    }

    private let components = Mutex<[String: Component]>([:])
    private let degradations = Mutex<[String: String]>([:])

    /// A new instance.
    public init() {}

    /// `component` made progress; it is stalled if the next beat does not come within `deadline`.
    /// Clears a failure reported earlier.
    public func heartbeat(_ component: String, deadline: Duration) {
        let until = ContinuousClock.now.advanced(by: deadline)
        components.withLock { $0[component] = Component(deadline: until, failure: nil) }
    }

    /// Marks `component` as failed (for example the state store went read-only) until its next heartbeat
    /// or ``recover(_:)``.
    public func fail(_ component: String, reason: String) {
        components.withLock { $0[component, default: Component()].failure = reason }
    }

    /// Clears a failure of `component`.
    public func recover(_ component: String) {
        components.withLock { $0[component]?.failure = nil }
    }

    /// Marks `component` degraded for `reason` (a condition a restart would not cure), or clears it with `nil`.
    public func degrade(_ component: String, reason: String?) {
        degradations.withLock { $0[component] = reason }
    }

    /// Stops watching `component` (it finished or was removed by a reload).
    public func remove(_ component: String) {
        components.withLock { _ = $0.removeValue(forKey: component) }
    }

    /// The status now.
    public func check() -> HealthStatus {
        let now = ContinuousClock.now
        let snapshot = components.withLock { $0 }
        var problems: [String] = []
        for (name, component) in snapshot.sorted(by: { $0.key < $1.key }) {
            if let failure = component.failure {
                problems.append("\(name): \(failure)")
            } else if let deadline = component.deadline, now > deadline {
                let late = (now - deadline).components.seconds
                problems.append("\(name): no heartbeat, \(late) s past its deadline")
            }
        }
        let degraded = degradations.withLock { $0 }.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        return HealthStatus(problems: problems, degraded: degraded)
    }
}
