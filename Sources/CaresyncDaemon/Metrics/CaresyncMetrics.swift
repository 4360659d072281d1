public import CoreMetrics
public import FHIRModel
public import Prometheus

/// Every metric caresync exports, named in one place. The sync engine records values through these
/// methods; labels come from fixed sets (peer names from the configuration, outcomes below), so the
/// number of series stays bounded.
///
/// | name | type | labels |
/// |---|---|---|
/// | `caresync_outbox_depth` | gauge | `peer` |
/// | `caresync_outbox_oldest_age_seconds` | gauge | `peer` |
/// | `caresync_dead_letters` | gauge | `peer` |
/// | `caresync_pushes_total` | counter | `peer`, `outcome` |
/// | `caresync_pulls_total` | counter | `peer`, `type`, `outcome` |
/// | `caresync_pulled_records_total` | counter | `peer`, `type` |
/// | `caresync_conflicts_open` | gauge | `peer` |
/// | `caresync_lag_seconds` | gauge | `peer` |
/// | `caresync_merge_duration_seconds` | histogram | `outcome` |
/// | `caresync_http_request_duration_seconds` | histogram | `peer`, `method`, `status_class` |
/// | `caresync_config_reloads_total` | counter | `outcome` |
public struct CaresyncMetrics: Sendable {
    /// The metric names.
    public enum Name {
        /// Pushes waiting per peer (gauge).
        public static let outboxDepth = "caresync_outbox_depth"
        /// Age of the oldest waiting push per peer, seconds (gauge).
        public static let outboxOldestAge = "caresync_outbox_oldest_age_seconds"
        /// Dead letters held per peer (gauge).
        public static let deadLetters = "caresync_dead_letters"
        /// Push attempts by peer and outcome (counter).
        public static let pushes = "caresync_pushes_total"
        /// Pulls by peer, type and outcome (counter).
        public static let pulls = "caresync_pulls_total"
        /// Records pulled by peer and type (counter).
        public static let pulledRecords = "caresync_pulled_records_total"
        /// Open conflicts per peer (gauge).
        public static let conflictsOpen = "caresync_conflicts_open"
        /// How far the hub is behind each peer, seconds (gauge).
        public static let lag = "caresync_lag_seconds"
        /// Merge latency by outcome (histogram).
        public static let mergeDuration = "caresync_merge_duration_seconds"
        /// HTTP latency by peer, method and status class (histogram).
        public static let httpRequestDuration = "caresync_http_request_duration_seconds"
        /// Configuration reloads by outcome (counter).
        public static let configReloads = "caresync_config_reloads_total"
    }

    /// How a queued push ended this attempt.
    public enum PushOutcome: String, Sendable, CaseIterable {
        /// The peer accepted it.
        case succeeded
        /// A transient failure (network, 429, 5xx); it will be retried.
        case retried
        /// A lost race (409, or 412 after If-Match); it is re-read and re-merged.
        case conflict
        /// A failure retrying cannot fix; it went to the dead-letter list.
        case deadLettered = "dead_lettered"
    }

    /// How one pull (one search with its pages) ended.
    public enum PullOutcome: String, Sendable, CaseIterable {
        case succeeded
        case failed
    }

    /// How one merge ended.
    public enum MergeOutcome: String, Sendable, CaseIterable {
        case merged
        case unchanged
        case conflict
        case refused
    }

    /// How a configuration reload ended.
    public enum ReloadOutcome: String, Sendable, CaseIterable {
        case applied
        case unchanged
        case refused
        case failed
    }

    /// Histogram buckets for merges (they take microseconds to milliseconds).
    public static let mergeBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100),
    ]

    /// Histogram buckets for HTTP requests.
    public static let httpBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
    ]

    private let factory: any MetricsFactory

    /// Metrics recorded through `factory` (the bootstrapped one by default).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    /// A Prometheus factory over `registry` with caresync's histogram buckets.
    public static func prometheusFactory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[Name.mergeDuration] = mergeBuckets
        factory.durationHistogramBuckets[Name.httpRequestDuration] = httpBuckets
        return factory
    }

    // MARK: Queue

    /// Pushes waiting for `peer`.
    public func setQueueDepth(peer: String, _ depth: Int) {
        Gauge(label: Name.outboxDepth, dimensions: [("peer", peer)], factory: factory).record(depth)
    }

    /// Age of the oldest push waiting for `peer` (0 when none).
    public func setOldestQueuedAge(peer: String, _ age: Duration) {
        Gauge(label: Name.outboxOldestAge, dimensions: [("peer", peer)], factory: factory).record(age.seconds)
    }

    /// Dead letters held for `peer`.
    public func setDeadLetters(peer: String, _ count: Int) {
        Gauge(label: Name.deadLetters, dimensions: [("peer", peer)], factory: factory).record(count)
    }

    /// One push attempt to `peer`.
    public func recordPush(peer: String, _ outcome: PushOutcome) {
        Counter(label: Name.pushes, dimensions: [("peer", peer), ("outcome", outcome.rawValue)], factory: factory).increment()
    }

    // MARK: Pull and merge

    /// One pull of `type` from `peer`, which brought `records` records.
    public func recordPull(peer: String, type: ResourceType, _ outcome: PullOutcome, records: Int = 0) {
        Counter(label: Name.pulls, dimensions: [("peer", peer), ("type", type.rawValue), ("outcome", outcome.rawValue)], factory: factory)
            .increment()
        if records > 0 {
            Counter(label: Name.pulledRecords, dimensions: [("peer", peer), ("type", type.rawValue)], factory: factory).increment(by: records)
        }
    }

    /// Open conflicts between `peer` and the hub.
    public func setOpenConflicts(peer: String, _ count: Int) {
        Gauge(label: Name.conflictsOpen, dimensions: [("peer", peer)], factory: factory).record(count)
    }

    /// How far behind `peer` the hub is: now minus the newest change seen from it.
    public func setLag(peer: String, _ lag: Duration) {
        Gauge(label: Name.lag, dimensions: [("peer", peer)], factory: factory).record(lag.seconds)
    }

    /// One three-way merge.
    public func recordMerge(_ outcome: MergeOutcome, duration: Duration) {
        Timer(label: Name.mergeDuration, dimensions: [("outcome", outcome.rawValue)], factory: factory).record(duration: duration)
    }

    // MARK: HTTP and operations

    /// One HTTP request to `peer`; `status` is `nil` when no response arrived.
    public func recordHTTPRequest(peer: String, method: String, status: Int?, duration: Duration) {
        let statusClass = status.map { "\($0 / 100)xx" } ?? "error"
        Timer(
            label: Name.httpRequestDuration, dimensions: [("peer", peer), ("method", method.uppercased()), ("status_class", statusClass)],
            factory: factory
        ).record(duration: duration)
    }

    /// One configuration reload.
    public func recordReload(_ outcome: ReloadOutcome) {
        Counter(label: Name.configReloads, dimensions: [("outcome", outcome.rawValue)], factory: factory).increment()
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    fileprivate var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

extension Timer {
    fileprivate func record(duration: Duration) {
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        recordNanoseconds(nanoseconds)
    }
}
