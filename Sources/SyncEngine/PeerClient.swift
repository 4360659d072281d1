public import FHIRClient
public import FHIRModel

/// What the engine asks of a peer: the I/O edge, implemented by ``FHIRClient``.
public protocol SyncPeerClient: Sendable {
    /// `GET metadata`, refusing a peer that is not FHIR 4.0.1.
    @discardableResult
    func requireR4() async throws(FHIRClientError) -> PeerCapabilities
    func search(_ type: ResourceType, _ parameters: [(String, String)]) async throws(FHIRClientError) -> BundlePage
    func next(_ link: String, expecting bundleType: String) async throws(FHIRClientError) -> BundlePage
    /// A search page with its resources as the bytes received (what pulls store).
    func searchPage(_ type: ResourceType, _ parameters: [(String, String)]) async throws(FHIRClientError) -> RawBundlePage
    func nextPage(_ link: String) async throws(FHIRClientError) -> RawBundlePage
    func read(_ type: ResourceType, id: String) async throws(FHIRClientError) -> FetchedResource?
    /// Like ``read(_:id:)``, telling apart 404 (not known) from 410 (deleted).
    func readCurrent(_ type: ResourceType, id: String) async throws(FHIRClientError) -> ReadOutcome
    func create(_ type: ResourceType, body: [UInt8], ifNoneExist: String?, requestID: String) async throws(FHIRClientError)
        -> WriteResult
    func update(_ type: ResourceType, id: String, body: [UInt8], ifMatchVersion: String?, requestID: String)
        async throws(FHIRClientError) -> WriteResult
    func batch(_ entries: [BatchEntry], requestID: String) async throws(FHIRClientError) -> [BatchEntryResult]
    func transaction(_ entries: [BatchEntry], requestID: String) async throws(FHIRClientError) -> [BatchEntryResult]
}

extension FHIRClient: SyncPeerClient {}

/// Told what the engine does, for metrics and health (the daemon maps it onto its Prometheus metrics
/// and watchdog). Every method has a do-nothing default.
public protocol SyncObserver: Sendable {
    /// One pull of `type` from `peer` ended.
    func pulled(peer: String, type: ResourceType, records: Int, succeeded: Bool)
    /// One push attempt to `peer` ended.
    func pushed(peer: String, outcome: PushOutcomeKind)
    /// One inbox row was decided.
    func merged(_ kind: InboundPlan.Kind, duration: Duration)
    /// A peer's queue and lag, measured after a pass.
    func measured(peer: String, queueDepth: Int, oldestQueuedAge: Duration, deadLetters: Int, openConflicts: Int, lag: Duration)
    /// A loop of the engine made progress (`pull:<peer>`, `push:<peer>`, `merge`).
    func heartbeat(_ component: String, deadline: Duration)
    /// The state store could not be written for lack of space (`problem`, work paused with a back-off),
    /// or, with `nil`, a write succeeded again.
    func storage(problem: String?)
}

extension SyncObserver {
    public func pulled(peer: String, type: ResourceType, records: Int, succeeded: Bool) {}
    public func pushed(peer: String, outcome: PushOutcomeKind) {}
    public func merged(_ kind: InboundPlan.Kind, duration: Duration) {}
    public func measured(peer: String, queueDepth: Int, oldestQueuedAge: Duration, deadLetters: Int, openConflicts: Int, lag: Duration) {}
    public func heartbeat(_ component: String, deadline: Duration) {}
    public func storage(problem: String?) {}
}

/// How one push attempt ended.
public enum PushOutcomeKind: String, Sendable, Hashable {
    case succeeded
    case retried
    case conflict
    case deadLettered = "dead_lettered"
}
