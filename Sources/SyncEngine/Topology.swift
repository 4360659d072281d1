public import FHIRModel
public import StateStore

/// Which hub changes flow to a read-write provider (DESIGN §3 step 5).
public enum FanOut: String, Sendable, Hashable, CaseIterable {
    /// Changes for patients the provider already holds records for.
    case heldPatients = "held-patients"
    /// Every change at the hub.
    case allPatients = "all-patients"
    /// None: the provider only receives merges of records it sent.
    case none
}

/// A peer as the engine sees it: its name, ODS code and role.
public struct SyncPeer: Sendable, Hashable {
    /// The short name (state store key, logs, metrics).
    public var name: String
    /// The ODS code, which mints `urn:caresync:<ODS>:<type>` identifiers.
    public var ods: String
    /// `hub`, `read-write` or `read-only`.
    public var mode: PeerMode
    /// Fan-out scope (providers in `read-write` mode only).
    public var fanOut: FanOut
    /// The FHIR base (recorded in the state store for `caresync status`).
    public var baseURL: String

    public init(name: String, ods: String, mode: PeerMode, fanOut: FanOut = .heldPatients, baseURL: String) {
        self.name = name
        self.ods = ods
        self.baseURL = baseURL
        self.mode = mode
        self.fanOut = fanOut
    }

    /// Whether the engine writes to this provider.
    public var isWritableProvider: Bool { mode == .readWrite }

    /// Whether hub changes are fanned out to this provider (a writable provider whose scope is not `none`).
    var receivesFanOut: Bool { isWritableProvider && fanOut != .none }
}

/// The hub and the providers.
public struct SyncTopology: Sendable, Hashable {
    public var hub: SyncPeer
    public var providers: [SyncPeer]

    public init(hub: SyncPeer, providers: [SyncPeer]) {
        self.hub = hub
        self.providers = providers
    }

    /// Every peer, the hub first.
    public var peers: [SyncPeer] { [hub] + providers }

    /// The peer called `name`.
    public func peer(named name: String) -> SyncPeer? { peers.first { $0.name == name } }

    /// The providers hub changes are fanned out to, by name.
    var fanOutReceivers: Set<String> { Set(providers.filter(\.receivesFanOut).map(\.name)) }

    /// Whether any provider's fan-out depends on the patients it holds.
    var needsPatientHolders: Bool { providers.contains { $0.isWritableProvider && $0.fanOut == .heldPatients } }
}

/// How the engine paces and sizes its work.
public struct EngineSettings: Sendable, Hashable {
    /// Time between pulls of one peer.
    public var interval: Duration
    /// The types synchronised, in order.
    public var resourceTypes: [ResourceType]
    /// `_count` of each search page.
    public var pageSize: Int
    /// How far before the cursor a sweep starts (`_lastUpdated=ge{cursor − margin}`): a version committed
    /// later than that after its `lastUpdated` stamp can be missed.
    public var clockSkewMargin: Duration
    /// How often a pull reads the whole margin window again (a sweep); the pulls in between read only
    /// from the newest version already seen. `nil`: every `clockSkewMargin`.
    public var sweepInterval: Duration?
    /// Pushes sent in one Bundle at most.
    public var pushBatchSize: Int
    /// Inbox rows merged per state store transaction at most.
    public var mergeBatchSize: Int
    /// How long a leased push stays ours before another worker may take it.
    public var leaseDuration: Duration

    public init(
        interval: Duration = .seconds(30),
        resourceTypes: [ResourceType] = ResourceType.synchronised,
        pageSize: Int = 100,
        clockSkewMargin: Duration = .seconds(5),
        pushBatchSize: Int = 250,
        mergeBatchSize: Int = 200,
        leaseDuration: Duration = .seconds(120),
        sweepInterval: Duration? = nil
    ) {
        self.interval = interval
        self.resourceTypes = resourceTypes
        self.pageSize = pageSize
        self.clockSkewMargin = clockSkewMargin
        self.pushBatchSize = pushBatchSize
        self.mergeBatchSize = mergeBatchSize
        self.leaseDuration = leaseDuration
        self.sweepInterval = sweepInterval
    }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
