import Synchronization

/// Whether the daemon is working, and if not, why.
public struct HealthStatus: Sendable, Equatable {
    /// One line per failing or stalled component (`sync: no heartbeat for 95 s`).
    public var problems: [String]

    /// A status with `problems` (none: healthy).
    public init(problems: [String] = []) {
        self.problems = problems
    }

    /// No problems.
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
        return HealthStatus(problems: problems)
    }
}
