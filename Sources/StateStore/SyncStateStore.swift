public import FHIRModel

/// The state store operations the sync engine needs beyond ``StateStoreProtocol``: batched units of work
/// (so one fsync covers many records), one read for everything a merge decision needs, the recovery of
/// a lost race in one transaction, and the peer activity `caresync status` shows.
public protocol SyncStateStoreProtocol: StateStoreProtocol, ResyncRequestStore {
    /// Everything the merge of each looked-up record needs, read in one snapshot (see ``RecordContext``).
    func recordContexts(_ lookups: [RecordLookup]) async throws(StateStoreError) -> [RecordContext]
    /// Commits many ``MergeCommit``s in one transaction: all of them or none.
    func commitMerges(_ commits: [MergeCommit]) async throws(StateStoreError) -> [MergeCommitResult]
    /// Completes many pushes in one transaction. A push whose lease was lost is skipped (nothing of it is
    /// written) and its item id returned; the others complete.
    func complete(_ pushes: [CompletedPush]) async throws(StateStoreError) -> Set<Int64>
    /// The target answered that the record changed since the push was merged (409, or 412 after
    /// `If-Match`), or a conditional create found it already there: in one transaction, records what the
    /// target now holds, replaces the push in place (same queue position, new request id, attempts reset)
    /// or removes it, stores conflicts and audits.
    func recoverLostRace(_ push: LeasedPush, _ recovery: LostRaceRecovery) async throws(StateStoreError) -> EnqueueReceipt?
    /// Records what the engine is doing with `peer` and, when measured, the lag of the hub behind it.
    func recordSyncState(peer: String, _ state: PeerSyncState, detail: String?, lagMilliseconds: Int64?)
        async throws(StateStoreError)
    /// Forgets the pull cursor of `peer` for `resourceType` (every type when `nil`), so its next pull
    /// reads everything again.
    func resetCursors(peer: String, resourceType: ResourceType?) async throws(StateStoreError)
    /// The versions the identity map holds as synced with `peer` for these ids (id → versionId), for
    /// recognising at pull time a version already known (our own push coming back).
    func syncedVersions(peer: String, resourceType: ResourceType, localIDs: [String]) async throws(StateStoreError) -> [String: String]
    /// Inbox rows of `peer` by state: pending, merged, quarantined.
    func inboxCounts(peer: String) async throws(StateStoreError) -> InboxCounts
}

/// How to find one record for ``SyncStateStoreProtocol/recordContexts(_:)``: by its id at `peer`
/// first, then by any of its global keys.
public struct RecordLookup: Sendable, Hashable {
    public var peer: String
    public var resourceType: ResourceType
    public var localID: String?
    public var keys: [GlobalKey]
    /// Also list the peers holding any record of this patient (fan-out targets).
    public var patient: NHSNumber?
    /// When `peer` holds no record of `patient` yet: also list the records of the patient this hub holds
    /// (what a provider receives when it starts holding the patient).
    public var hubForNewHolder: String?
    /// The peers whose bases and queued pushes are read in full; `nil`: every peer. Of the others only
    /// the id of the last queued push is read (``RecordContext/queueTailIDs``).
    public var contentPeers: Set<String>?

    public init(
        peer: String, resourceType: ResourceType, localID: String?, keys: [GlobalKey], patient: NHSNumber? = nil,
        hubForNewHolder: String? = nil, contentPeers: Set<String>? = nil
    ) {
        self.peer = peer
        self.resourceType = resourceType
        self.localID = localID
        self.keys = keys
        self.patient = patient
        self.hubForNewHolder = hubForNewHolder
        self.contentPeers = contentPeers
    }
}

/// What the state store knows about one record, read in one snapshot.
public struct RecordContext: Sendable, Hashable {
    /// The record, when known (by the peer's id or any key).
    public var identity: RecordIdentity?
    /// The stored base of each peer (for the hub: the hub's content as last known), by peer name; only the
    /// lookup's ``RecordLookup/contentPeers`` when it names them.
    public var bases: [String: [UInt8]]
    /// The last queued push of the record for each peer that has one, by peer name; only the lookup's
    /// ``RecordLookup/contentPeers`` when it names them.
    public var queueTails: [String: OutboxItem]
    /// The id of the last queued push of the record for each peer that has one, by peer name (every peer).
    public var queueTailIDs: [String: Int64]
    /// Peers with an open conflict on this record.
    public var openConflictPeers: Set<String>
    /// Peers holding any record of the looked-up patient (empty when no patient was given).
    public var patientHolders: Set<String>
    /// The hub's records of the patient, when the looked-up peer holds none yet (see
    /// ``RecordLookup/hubForNewHolder``).
    public var hubPatientRecords: [PatientRecord]

    public init(
        identity: RecordIdentity?,
        bases: [String: [UInt8]] = [:],
        queueTails: [String: OutboxItem] = [:],
        openConflictPeers: Set<String> = [],
        patientHolders: Set<String> = [],
        hubPatientRecords: [PatientRecord] = []
    ) {
        self.identity = identity
        self.bases = bases
        self.queueTails = queueTails
        self.queueTailIDs = queueTails.mapValues(\.id)
        self.openConflictPeers = openConflictPeers
        self.patientHolders = patientHolders
        self.hubPatientRecords = hubPatientRecords
    }
}

/// One record of a patient held at the hub.
public struct PatientRecord: Sendable, Hashable {
    public var recordKey: GlobalKey
    /// The hub's content as last known.
    public var hubContent: [UInt8]
    /// Peers that hold the record or have a push of it queued.
    public var peers: Set<String>

    public init(recordKey: GlobalKey, hubContent: [UInt8], peers: Set<String>) {
        self.recordKey = recordKey
        self.hubContent = hubContent
        self.peers = peers
    }
}

/// A push that succeeded, with what the target answered and the pushes that follow from it (queued in
/// the same transaction, only if this completion is recorded).
public struct CompletedPush: Sendable, Hashable {
    public var push: LeasedPush
    public var completion: PushCompletion
    public var followUps: [PushRequest]

    public init(push: LeasedPush, completion: PushCompletion, followUps: [PushRequest] = []) {
        self.push = push
        self.completion = completion
        self.followUps = followUps
    }
}

/// What to do after a lost race (see ``SyncStateStoreProtocol/recoverLostRace(_:_:)``).
public struct LostRaceRecovery: Sendable, Hashable {
    /// The push's new content, operation and guard; `nil` removes the push.
    public struct Replacement: Sendable, Hashable {
        public var operation: PushOperation
        public var localID: String?
        public var ifMatchVersion: String?
        public var body: [UInt8]
        public var mergeBase: [UInt8]?

        public init(operation: PushOperation, localID: String?, ifMatchVersion: String?, body: [UInt8], mergeBase: [UInt8]?) {
            self.operation = operation
            self.localID = localID
            self.ifMatchVersion = ifMatchVersion
            self.body = body
            self.mergeBase = mergeBase
        }
    }

    public var replacement: Replacement?
    /// What the target holds now (its id, version and content): becomes the target's identity and base.
    public var targetLocalID: String?
    public var targetVersionID: String?
    public var targetContent: [UInt8]?
    public var conflicts: [NewConflict]
    public var audit: [AuditEvent]

    public init(
        replacement: Replacement?,
        targetLocalID: String? = nil,
        targetVersionID: String? = nil,
        targetContent: [UInt8]? = nil,
        conflicts: [NewConflict] = [],
        audit: [AuditEvent] = []
    ) {
        self.replacement = replacement
        self.targetLocalID = targetLocalID
        self.targetVersionID = targetVersionID
        self.targetContent = targetContent
        self.conflicts = conflicts
        self.audit = audit
    }
}

/// Inbox rows of one peer by state.
public struct InboxCounts: Sendable, Hashable {
    public var pending: Int
    public var merged: Int
    public var quarantined: Int

    public init(pending: Int, merged: Int, quarantined: Int) {
        self.pending = pending
        self.merged = merged
        self.quarantined = quarantined
    }
}
