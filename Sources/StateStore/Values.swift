public import FHIRModel

// The values that go in and out of the state store. Times are milliseconds since the Unix epoch (UTC),
// from the store's injected ``WallClock`` unless the field says it is a server's text.

// MARK: Peers

/// How caresync treats a peer.
public enum PeerMode: String, Sendable, Hashable, Codable {
    /// The shared care record everything syncs through.
    case hub
    /// A provider whose records caresync reads and writes back to.
    case readWrite = "read-write"
    /// A provider caresync only reads from.
    case readOnly = "read-only"
}

/// What the sync engine is doing with a peer, for `caresync status`.
public enum PeerSyncState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Pulling, merging or pushing now.
    case syncing
    /// In step; waiting for the next cycle.
    case idle
    /// The last contact failed in a way that may pass; waiting before trying again.
    case backingOff = "backing-off"
    /// The peer cannot be reached (connection refused, DNS, TLS).
    case unreachable
    /// The peer was refused (not FHIR 4.0.1, or its store went backwards) and is not synced.
    case refused
}

/// What the daemon last knew about reaching a peer.
public enum ConnectionState: String, Sendable, Hashable, Codable {
    case unknown
    case connected
    case failing
    case disconnected
}

/// A configured peer: named by a short name and its ODS code.
public struct PeerDescriptor: Sendable, Hashable {
    public var name: String
    public var ods: String
    public var baseURL: String
    public var mode: PeerMode

    public init(name: String, ods: String, baseURL: String, mode: PeerMode) {
        self.name = name
        self.ods = ods
        self.baseURL = baseURL
        self.mode = mode
    }
}

/// The outcome of one contact with a peer, for `status`.
public enum PeerContact: Sendable, Hashable {
    case succeeded
    /// `message` must not contain NHS numbers or names.
    case failed(message: String, state: ConnectionState)
}

// MARK: Pull: cursors and the inbox

/// One version of one resource at one peer: the dedupe key of a pull.
public struct VersionKey: Sendable, Hashable {
    public var resourceType: ResourceType
    public var id: String
    public var versionID: String

    public init(resourceType: ResourceType, id: String, versionID: String) {
        self.resourceType = resourceType
        self.id = id
        self.versionID = versionID
    }
}

/// Where a pull of (peer, type) resumes: the server's time text and the versions already seen at
/// that time (a `ge` query returns them again).
public struct SyncCursor: Sendable, Hashable {
    /// A time the server supplied (`Bundle.meta.lastUpdated` or `Date`), as it wrote it.
    public var serverTime: String
    /// The versions pulled inside the skew window before `serverTime`, newest first: the next pull
    /// skips them. A list, not a set: it is written with every page, and only the next pull looks into it.
    public var seen: [VersionKey]
    /// The newest version any pull of (peer, type) has seen: the version the next pull checks is still
    /// there, so a store restored from an older backup is noticed (docs/sync-engine.md).
    public var newest: PulledVersionMark?

    public init(serverTime: String, seen: [VersionKey] = [], newest: PulledVersionMark? = nil) {
        self.serverTime = serverTime
        self.seen = seen
        self.newest = newest
    }
}

/// One version a peer served: its id there, `meta.versionId` and `meta.lastUpdated` as the server wrote them.
public struct PulledVersionMark: Sendable, Hashable {
    public var localID: String
    public var versionID: String
    public var lastUpdated: String

    public init(localID: String, versionID: String, lastUpdated: String) {
        self.localID = localID
        self.versionID = versionID
        self.lastUpdated = lastUpdated
    }
}

/// A resource version pulled from a peer, as stored in the inbox.
public struct InboxRecord: Sendable, Hashable {
    public var resourceType: ResourceType
    public var localID: String
    public var versionID: String
    /// `meta.lastUpdated` as the server wrote it.
    public var lastUpdated: String?
    public var nhsNumber: NHSNumber?
    /// The resource as received (JSON bytes).
    public var content: [UInt8]

    public init(
        resourceType: ResourceType,
        localID: String,
        versionID: String,
        lastUpdated: String? = nil,
        nhsNumber: NHSNumber? = nil,
        content: [UInt8]
    ) {
        self.resourceType = resourceType
        self.localID = localID
        self.versionID = versionID
        self.lastUpdated = lastUpdated
        self.nhsNumber = nhsNumber
        self.content = content
    }

    public var versionKey: VersionKey { VersionKey(resourceType: resourceType, id: localID, versionID: versionID) }
}

/// One page of a pull: stored in the inbox and the cursor advanced in one transaction.
public struct PulledPage: Sendable {
    public var peer: String
    public var resourceType: ResourceType
    public var records: [InboxRecord]
    /// The cursor after this page.
    public var cursor: SyncCursor
    /// Versions read again after the peer's store was found restored: one the inbox already holds as
    /// merged goes back to pending with the content read now, so it is decided again against what is
    /// synced now (rather than skipped as already seen).
    public var reopen: Set<VersionKey>

    public init(
        peer: String, resourceType: ResourceType, records: [InboxRecord], cursor: SyncCursor, reopen: Set<VersionKey> = []
    ) {
        self.peer = peer
        self.resourceType = resourceType
        self.records = records
        self.cursor = cursor
        self.reopen = reopen
    }
}

/// A stored inbox row waiting to be merged.
public struct InboxItem: Sendable, Hashable {
    public var id: Int64
    public var peer: String
    public var record: InboxRecord
    public var receivedAt: Int64

    public init(
        id: Int64,
        peer: String,
        record: InboxRecord,
        receivedAt: Int64
    ) {
        self.id = id
        self.peer = peer
        self.record = record
        self.receivedAt = receivedAt
    }
}

/// What became of an inbox row.
public enum InboxOutcome: Sendable, Hashable {
    /// Merged (pushes, conflicts and audit entries are in the same commit).
    case merged
    /// Rejected as bad input; kept with the reason, never dropped.
    case quarantined(reason: String)
}

// MARK: Identity map and bases

/// Links a record (by its global keys) to its id and version at one peer.
public struct IdentityLink: Sendable, Hashable {
    /// The record's canonical key (the key it was first known by).
    public var recordKey: GlobalKey
    /// Other global keys the same record is known by at some peer.
    public var aliases: [GlobalKey]
    public var nhsNumber: NHSNumber?
    public var peer: String
    public var localID: String
    public var versionID: String?

    public init(
        recordKey: GlobalKey,
        aliases: [GlobalKey] = [],
        nhsNumber: NHSNumber?,
        peer: String,
        localID: String,
        versionID: String?
    ) {
        self.recordKey = recordKey
        self.aliases = aliases
        self.nhsNumber = nhsNumber
        self.peer = peer
        self.localID = localID
        self.versionID = versionID
    }
}

/// A record's id and version at one peer.
public struct PeerIdentity: Sendable, Hashable {
    public var peer: String
    public var localID: String
    public var versionID: String?

    public init(
        peer: String,
        localID: String,
        versionID: String?
    ) {
        self.peer = peer
        self.localID = localID
        self.versionID = versionID
    }
}

/// Everything the identity map knows about one record.
public struct RecordIdentity: Sendable, Hashable {
    public var recordKey: GlobalKey
    /// Every key the record is known by, the canonical one included.
    public var keys: [GlobalKey]
    public var nhsNumber: NHSNumber?
    /// One entry per peer that holds the record, by peer name.
    public var peers: [PeerIdentity]

    /// The record's identity at `peer`.
    public func at(_ peer: String) -> PeerIdentity? { peers.first { $0.peer == peer } }

    public init(
        recordKey: GlobalKey,
        keys: [GlobalKey],
        nhsNumber: NHSNumber?,
        peers: [PeerIdentity]
    ) {
        self.recordKey = recordKey
        self.keys = keys
        self.nhsNumber = nhsNumber
        self.peers = peers
    }
}

/// Sets the base (the content last synced between `peer` and the hub) of a record.
public struct BaseUpdate: Sendable, Hashable {
    public var peer: String
    public var recordKey: GlobalKey
    public var content: [UInt8]

    public init(peer: String, recordKey: GlobalKey, content: [UInt8]) {
        self.peer = peer
        self.recordKey = recordKey
        self.content = content
    }
}

/// A stored base.
public struct StoredBase: Sendable, Hashable {
    public var content: [UInt8]
    public var updatedAt: Int64

    public init(
        content: [UInt8],
        updatedAt: Int64
    ) {
        self.content = content
        self.updatedAt = updatedAt
    }
}

// MARK: Outbox

/// The FHIR interaction a queued push performs.
public enum PushOperation: String, Sendable, Hashable, Codable {
    /// `POST [type]` with `If-None-Exist: identifier=system|value` (the record key's identifier).
    case create
    /// `PUT [type]/[localID]` with `If-Match: W/"<ifMatchVersion>"`.
    case update
}

/// A push to enqueue.
public struct PushRequest: Sendable, Hashable {
    /// The target peer.
    public var peer: String
    public var recordKey: GlobalKey
    public var nhsNumber: NHSNumber?
    public var operation: PushOperation
    /// The record's id at the target (updates).
    public var localID: String?
    /// The target's version the update was merged against (`If-Match`).
    public var ifMatchVersion: String?
    /// The resource to send (JSON bytes).
    public var body: [UInt8]
    /// Peers whose base for this record becomes `body` when the push completes (usually the target,
    /// and the provider the change came from when the target is the hub).
    public var baseOwners: [String]
    /// The target's content `body` was merged against (the sync engine's three-way base when the target
    /// answers that it changed meanwhile: `body`'s changes are those from this content).
    public var mergeBase: [UInt8]?

    public init(
        peer: String,
        recordKey: GlobalKey,
        nhsNumber: NHSNumber?,
        operation: PushOperation,
        localID: String? = nil,
        ifMatchVersion: String? = nil,
        body: [UInt8],
        baseOwners: [String]? = nil,
        mergeBase: [UInt8]? = nil
    ) {
        self.peer = peer
        self.recordKey = recordKey
        self.nhsNumber = nhsNumber
        self.operation = operation
        self.localID = localID
        self.ifMatchVersion = ifMatchVersion
        self.body = body
        self.baseOwners = baseOwners ?? [peer]
        self.mergeBase = mergeBase
    }
}

/// What ``StateStoreProtocol/enqueue(_:)`` did with one push.
public struct EnqueueReceipt: Sendable, Hashable {
    public var itemID: Int64
    /// The `X-Request-ID` every attempt of this push sends.
    public var requestID: String
    /// The request id of an unsent push this one replaced (coalescing), if any.
    public var supersededRequestID: String?

    public init(
        itemID: Int64,
        requestID: String,
        supersededRequestID: String?
    ) {
        self.itemID = itemID
        self.requestID = requestID
        self.supersededRequestID = supersededRequestID
    }
}

/// A queued push as stored.
public struct OutboxItem: Sendable, Hashable {
    public var id: Int64
    public var requestID: String
    public var push: PushRequest
    /// Times the item was handed to a worker.
    public var attempts: Int
    public var enqueuedAt: Int64
    public var nextAttemptAt: Int64
    /// Set while leased.
    public var leaseExpiresAt: Int64?
    public var lastError: String?

    public init(
        id: Int64,
        requestID: String,
        push: PushRequest,
        attempts: Int,
        enqueuedAt: Int64,
        nextAttemptAt: Int64,
        leaseExpiresAt: Int64?,
        lastError: String?
    ) {
        self.id = id
        self.requestID = requestID
        self.push = push
        self.attempts = attempts
        self.enqueuedAt = enqueuedAt
        self.nextAttemptAt = nextAttemptAt
        self.leaseExpiresAt = leaseExpiresAt
        self.lastError = lastError
    }
}

/// A push handed to one worker until `leaseExpiresAt`; complete, fail or dead-letter it with this value.
public struct LeasedPush: Sendable, Hashable {
    public var item: OutboxItem
    public var leaseToken: String
    public var leaseExpiresAt: Int64

    public init(
        item: OutboxItem,
        leaseToken: String,
        leaseExpiresAt: Int64
    ) {
        self.item = item
        self.leaseToken = leaseToken
        self.leaseExpiresAt = leaseExpiresAt
    }
}

/// What the target answered to a successful push.
public struct PushCompletion: Sendable, Hashable {
    /// The record's id at the target (the server's id after a create).
    public var localID: String
    /// The version the target now holds.
    public var versionID: String?
    /// The content the base becomes; `nil` means the pushed body.
    public var baseContent: [UInt8]?

    public init(localID: String, versionID: String?, baseContent: [UInt8]? = nil) {
        self.localID = localID
        self.versionID = versionID
        self.baseContent = baseContent
    }
}

/// A push that failed permanently, kept with its reason until an operator retries it.
public struct DeadLetter: Sendable, Hashable {
    /// The outbox item id it had.
    public var id: Int64
    public var requestID: String
    public var push: PushRequest
    public var attempts: Int
    public var enqueuedAt: Int64
    /// The HTTP status, when there was one.
    public var httpStatus: Int?
    /// The OperationOutcome text or other reason.
    public var reason: String
    public var deadAt: Int64

    public init(
        id: Int64,
        requestID: String,
        push: PushRequest,
        attempts: Int,
        enqueuedAt: Int64,
        httpStatus: Int?,
        reason: String,
        deadAt: Int64
    ) {
        self.id = id
        self.requestID = requestID
        self.push = push
        self.attempts = attempts
        self.enqueuedAt = enqueuedAt
        self.httpStatus = httpStatus
        self.reason = reason
        self.deadAt = deadAt
    }
}

/// Which dead letters to retry.
public enum DeadLetterSelection: Sendable, Hashable {
    case ids([Int64])
    /// Every dead letter, or every one for one peer.
    case all(peer: String?)
}

/// A peer's queue: depth, oldest age and the first items, read in one snapshot.
public struct QueueListing: Sendable, Hashable {
    public var depth: Int
    public var oldestEnqueuedAt: Int64?
    public var items: [OutboxItem]

    public init(
        depth: Int,
        oldestEnqueuedAt: Int64?,
        items: [OutboxItem]
    ) {
        self.depth = depth
        self.oldestEnqueuedAt = oldestEnqueuedAt
        self.items = items
    }
}

// MARK: Conflicts

/// One conflicting path and the policy rule that held it.
public struct ConflictPath: Sendable, Hashable {
    public var path: String
    public var rule: String

    public init(path: String, rule: String) {
        self.path = path
        self.rule = rule
    }
}

/// A conflict to record.
public struct NewConflict: Sendable, Hashable {
    public var peer: String
    public var recordKey: GlobalKey
    public var nhsNumber: NHSNumber?
    public var base: [UInt8]?
    public var ours: [UInt8]?
    public var theirs: [UInt8]?
    public var paths: [ConflictPath]

    public init(
        peer: String,
        recordKey: GlobalKey,
        nhsNumber: NHSNumber?,
        base: [UInt8]?,
        ours: [UInt8]?,
        theirs: [UInt8]?,
        paths: [ConflictPath]
    ) {
        self.peer = peer
        self.recordKey = recordKey
        self.nhsNumber = nhsNumber
        self.base = base
        self.ours = ours
        self.theirs = theirs
        self.paths = paths
    }
}

/// How an operator settled a conflict.
public struct ConflictResolution: Sendable, Hashable {
    /// `ours`, `theirs`, `base`, `value`, or per-path choices, as the CLI names them.
    public var choice: String
    /// The resolved content.
    public var content: [UInt8]
    /// The operating-system user who resolved it.
    public var resolvedBy: String
    public var reason: String

    public init(choice: String, content: [UInt8], resolvedBy: String, reason: String) {
        self.choice = choice
        self.content = content
        self.resolvedBy = resolvedBy
        self.reason = reason
    }
}

/// What a target's queue of one record must end with for a prepared write to go ahead: its last queued
/// push's item id, or `nil` for an empty queue.
public struct QueueTailGuard: Sendable, Hashable {
    public var peer: String
    public var lastItemID: Int64?

    public init(peer: String, lastItemID: Int64?) {
        self.peer = peer
        self.lastItemID = lastItemID
    }
}

/// A stored conflict.
public struct ConflictRecord: Sendable, Hashable {
    public enum State: String, Sendable, Hashable { case open, resolved }

    public var id: Int64
    public var state: State
    public var conflict: NewConflict
    public var createdAt: Int64
    public var resolution: ConflictResolution?
    public var resolvedAt: Int64?

    public init(
        id: Int64,
        state: State,
        conflict: NewConflict,
        createdAt: Int64,
        resolution: ConflictResolution?,
        resolvedAt: Int64?
    ) {
        self.id = id
        self.state = state
        self.conflict = conflict
        self.createdAt = createdAt
        self.resolution = resolution
        self.resolvedAt = resolvedAt
    }
}

// MARK: Audit

/// Something to write in the audit log. `actor` is `caresync` for the daemon, the OS user for an operator.
public struct AuditEvent: Sendable, Hashable {
    public var actor: String
    public var action: String
    public var peer: String?
    public var recordKey: GlobalKey?
    public var nhsNumber: NHSNumber?
    public var requestID: String?
    public var detail: String

    public init(
        actor: String,
        action: String,
        peer: String? = nil,
        recordKey: GlobalKey? = nil,
        nhsNumber: NHSNumber? = nil,
        requestID: String? = nil,
        detail: String
    ) {
        self.actor = actor
        self.action = action
        self.peer = peer
        self.recordKey = recordKey
        self.nhsNumber = nhsNumber
        self.requestID = requestID
        self.detail = detail
    }
}

/// A stored audit entry.
public struct AuditEntry: Sendable, Hashable {
    public var sequence: Int64
    public var at: Int64
    public var event: AuditEvent
    /// SHA-256 (hex) of the previous entry's hash and this entry's canonical content.
    public var hash: String

    public init(
        sequence: Int64,
        at: Int64,
        event: AuditEvent,
        hash: String
    ) {
        self.sequence = sequence
        self.at = at
        self.event = event
        self.hash = hash
    }
}

/// The result of checking the audit hash chain.
public enum AuditVerification: Sendable, Hashable {
    case intact(entries: Int)
    /// The first entry whose link does not hold, and why.
    case broken(sequence: Int64, reason: String)
}

// MARK: Units of work

/// Everything that follows from merging one inbox row, committed in one transaction.
public struct MergeCommit: Sendable {
    public var inboxID: Int64
    public var outcome: InboxOutcome
    public var identityLinks: [IdentityLink]
    public var baseUpdates: [BaseUpdate]
    public var pushes: [PushRequest]
    public var conflicts: [NewConflict]
    public var audit: [AuditEvent]

    public init(
        inboxID: Int64,
        outcome: InboxOutcome,
        identityLinks: [IdentityLink] = [],
        baseUpdates: [BaseUpdate] = [],
        pushes: [PushRequest] = [],
        conflicts: [NewConflict] = [],
        audit: [AuditEvent] = []
    ) {
        self.inboxID = inboxID
        self.outcome = outcome
        self.identityLinks = identityLinks
        self.baseUpdates = baseUpdates
        self.pushes = pushes
        self.conflicts = conflicts
        self.audit = audit
    }
}

/// What a ``MergeCommit`` created.
public struct MergeCommitResult: Sendable, Hashable {
    public var pushes: [EnqueueReceipt]
    public var conflictIDs: [Int64]

    public init(
        pushes: [EnqueueReceipt],
        conflictIDs: [Int64]
    ) {
        self.pushes = pushes
        self.conflictIDs = conflictIDs
    }
}

// MARK: Status

/// One peer's line in `caresync status`.
public struct PeerStatus: Sendable, Hashable {
    public var peer: PeerDescriptor
    public var connectionState: ConnectionState
    public var queueDepth: Int
    public var oldestEnqueuedAt: Int64?
    public var deadLetters: Int
    public var openConflicts: Int
    /// Each type's pull cursor: its server time and newest version; `seen` is left empty (only a pull needs
    /// it, through `cursor(peer:resourceType:)`, and it holds up to 2,000 versions per cursor).
    public var cursors: [ResourceType: SyncCursor]
    public var lastSuccessAt: Int64?
    public var lastError: String?
    public var lastErrorAt: Int64?
    /// What the sync engine is doing with the peer.
    public var syncState: PeerSyncState
    /// Why the peer is in that state (a refusal's reason, the error being backed off from), when known.
    public var syncStateDetail: String?
    /// When the state last changed.
    public var syncStateAt: Int64?
    /// How far the hub is behind this peer: the age of the oldest change from it not yet in the hub
    /// (0 when in step), as the engine last measured it.
    public var lagMilliseconds: Int64?

    public init(
        peer: PeerDescriptor,
        connectionState: ConnectionState,
        queueDepth: Int,
        oldestEnqueuedAt: Int64?,
        deadLetters: Int,
        openConflicts: Int,
        cursors: [ResourceType: SyncCursor],
        lastSuccessAt: Int64?,
        lastError: String?,
        lastErrorAt: Int64?,
        syncState: PeerSyncState = .idle,
        syncStateDetail: String? = nil,
        syncStateAt: Int64? = nil,
        lagMilliseconds: Int64? = nil
    ) {
        self.syncState = syncState
        self.syncStateDetail = syncStateDetail
        self.syncStateAt = syncStateAt
        self.lagMilliseconds = lagMilliseconds
        self.peer = peer
        self.connectionState = connectionState
        self.queueDepth = queueDepth
        self.oldestEnqueuedAt = oldestEnqueuedAt
        self.deadLetters = deadLetters
        self.openConflicts = openConflicts
        self.cursors = cursors
        self.lastSuccessAt = lastSuccessAt
        self.lastError = lastError
        self.lastErrorAt = lastErrorAt
    }
}
