public import FHIRModel

/// Everything caresync keeps between runs, behind one protocol so that a PostgreSQL backend can follow
/// the SQLite one (``SQLiteStateStore``).
///
/// **Units of work.** Every method is one transaction: it commits entirely or not at all. Operations
/// the sync algorithm needs to be atomic are single calls taking a value that describes the whole unit:
/// ``storePulledPage(_:)`` (inbox rows + cursor), ``commitMerge(_:)`` (inbox row done + identity +
/// bases + pushes + conflicts + audit), ``complete(_:with:)`` (outbox row gone + base + identity +
/// audit), ``resolveConflict(id:resolution:pushes:)`` (resolution + pushes + audit). Values go in,
/// values come out; nothing holds a transaction open across an `await`, so a backend can map each call
/// to one database transaction with row locks (`FOR UPDATE SKIP LOCKED` for leasing).
///
/// **Nothing is deleted without an audit entry**: a completed push, a superseded (coalesced) push, a
/// dead-lettered push and a retried dead letter each write one, in the same transaction.
public protocol StateStoreProtocol: Sendable {
    // MARK: Peers and status

    /// Adds or updates a configured peer (the queue and history of a known peer are kept).
    func registerPeer(_ peer: PeerDescriptor) async throws(StateStoreError)
    /// Records the outcome of contacting `peer` (connection state, last success or error).
    func recordContact(peer: String, _ contact: PeerContact) async throws(StateStoreError)
    /// Per peer: connection state, queue depth, oldest queued age, dead letters, open conflicts, cursors.
    func status() async throws(StateStoreError) -> [PeerStatus]

    // MARK: Pull

    /// Stores a page of pulled records in the inbox (duplicates of stored versions ignored) and advances
    /// the cursor of (peer, type), in one transaction. Returns how many records were new.
    func storePulledPage(_ page: PulledPage) async throws(StateStoreError) -> Int
    func cursor(peer: String, resourceType: ResourceType) async throws(StateStoreError) -> SyncCursor?
    /// Inbox rows not yet merged, oldest first.
    func pendingInbox(peer: String?, limit: Int) async throws(StateStoreError) -> [InboxItem]

    // MARK: Identity and bases

    /// The record known by any of `keys`, or `nil`.
    func identity(forAnyOf keys: [GlobalKey]) async throws(StateStoreError) -> RecordIdentity?
    /// The record that `peer` holds as `resourceType/localID`, or `nil`.
    func identity(peer: String, resourceType: ResourceType, localID: String) async throws(StateStoreError)
        -> RecordIdentity?
    /// The peers the identity map links to at least one record of the patient (fan-out targets).
    func peersHolding(nhsNumber: NHSNumber) async throws(StateStoreError) -> [String]
    /// The content last synced between `peer` and the hub for the record.
    func base(peer: String, recordKey: GlobalKey) async throws(StateStoreError) -> StoredBase?

    // MARK: Merge

    /// Commits the outcome of merging one inbox row (see ``MergeCommit``) in one transaction.
    func commitMerge(_ commit: MergeCommit) async throws(StateStoreError) -> MergeCommitResult

    // MARK: Outbox

    /// Enqueues pushes in one transaction (group commit). A push for a (peer, record) whose last queued
    /// push was never leased replaces it (coalescing, audited); otherwise it queues behind it.
    func enqueue(_ pushes: [PushRequest]) async throws(StateStoreError) -> [EnqueueReceipt]
    /// Leases up to `limit` due pushes for `peer`: only the oldest queued push of each record, so a
    /// record's later push never goes before its earlier one. Each lease lasts `durationMilliseconds`.
    func lease(peer: String, limit: Int, durationMilliseconds: Int64) async throws(StateStoreError) -> [LeasedPush]
    /// The push succeeded: removes it, sets the bases of its base owners and the target's identity, audits.
    func complete(_ push: LeasedPush, with completion: PushCompletion) async throws(StateStoreError)
    /// The push failed in a way retrying can fix; it is due again after the backoff policy's delay
    /// (`retryAfterMilliseconds`, the server's `Retry-After`, wins). Returns the next attempt time.
    @discardableResult
    func fail(_ push: LeasedPush, error: String, retryAfterMilliseconds: Int64?) async throws(StateStoreError) -> Int64
    /// The push failed permanently: moves it to the dead letters with the reason, audited.
    func deadLetter(_ push: LeasedPush, httpStatus: Int?, reason: String) async throws(StateStoreError)
    /// Puts dead letters back in the queue (same request ids), audited with `actor` and `reason`.
    func retryDeadLetters(_ selection: DeadLetterSelection, actor: String, reason: String)
        async throws(StateStoreError) -> [EnqueueReceipt]
    /// Depth, oldest age and the first `limit` items of one peer's queue (or all peers'), in one snapshot.
    func queue(peer: String?, limit: Int) async throws(StateStoreError) -> QueueListing
    func deadLetters(peer: String?) async throws(StateStoreError) -> [DeadLetter]

    // MARK: Conflicts

    /// Open conflicts (all with `includeResolved`), optionally for one patient, oldest first.
    func conflicts(includeResolved: Bool, nhsNumber: NHSNumber?) async throws(StateStoreError) -> [ConflictRecord]
    func conflict(id: Int64) async throws(StateStoreError) -> ConflictRecord?
    /// Resolves an open conflict: writes the resolution, enqueues `pushes` and an audit entry naming
    /// the resolver and the reason, in one transaction.
    func resolveConflict(id: Int64, resolution: ConflictResolution, pushes: [PushRequest])
        async throws(StateStoreError) -> [EnqueueReceipt]

    // MARK: Audit

    func appendAudit(_ events: [AuditEvent]) async throws(StateStoreError)
    /// Entries oldest first, optionally for one patient and/or from a time on.
    func audit(nhsNumber: NHSNumber?, since: Int64?, limit: Int) async throws(StateStoreError) -> [AuditEntry]
    /// Walks the hash chain and reports the first entry whose link does not hold.
    func verifyAuditChain() async throws(StateStoreError) -> AuditVerification
}
