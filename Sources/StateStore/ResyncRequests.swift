public import FHIRModel
import Foundation
import GRDB

// Resync requests: an operator asks (`caresync resync`), the daemon picks the request up on its next
// cycle (the CLI wakes it with SIGUSR1), reports progress, and marks it completed or failed; the CLI's
// `--wait` reads the row until then. Each call is one transaction.

/// Where a resync request stands.
public enum ResyncState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Waiting for the daemon to pick it up.
    case pending
    /// The daemon is working on it (or was, when it stopped: it is picked up again).
    case running
    /// Done; `outcome` summarises what was read again.
    case completed
    /// Given up; `outcome` says why.
    case failed

    /// Whether the request is over (completed or failed).
    public var isFinished: Bool { self == .completed || self == .failed }
}

/// What a resync covers: `nil` means every peer, every synchronised type, every patient.
public struct ResyncScope: Sendable, Hashable {
    public var peer: String?
    public var resourceType: ResourceType?
    public var patient: NHSNumber?
    /// Read everything again from the start, not only the changes since the cursor.
    public var full: Bool

    public init(peer: String? = nil, resourceType: ResourceType? = nil, patient: NHSNumber? = nil, full: Bool = false) {
        self.peer = peer
        self.resourceType = resourceType
        self.patient = patient
        self.full = full
    }
}

/// How far the daemon has got with a request: `done` of `total` units (records or pages, as the daemon
/// counts them; `total` is `nil` while unknown) and what it is doing now.
public struct ResyncProgress: Sendable, Hashable {
    public var done: Int
    public var total: Int?
    /// For people, e.g. `pulling CarePlan from trust-a`. Never an NHS number or a name.
    public var phase: String?

    public init(done: Int, total: Int? = nil, phase: String? = nil) {
        self.done = done
        self.total = total
        self.phase = phase
    }
}

/// How a request ended.
public enum ResyncOutcome: Sendable, Hashable {
    /// `summary` says what was read again, e.g. `412 records read, 3 merged, 0 conflicts`.
    case completed(summary: String)
    case failed(reason: String)
}

/// A stored resync request.
public struct ResyncRequest: Sendable, Hashable {
    public var id: Int64
    public var scope: ResyncScope
    /// The operating-system user who asked.
    public var requestedBy: String
    public var requestedAt: Int64
    public var state: ResyncState
    public var startedAt: Int64?
    public var updatedAt: Int64
    public var finishedAt: Int64?
    public var progress: ResyncProgress
    /// The completion summary or the failure reason, once finished.
    public var outcome: String?

    public init(
        id: Int64,
        scope: ResyncScope,
        requestedBy: String,
        requestedAt: Int64,
        state: ResyncState,
        startedAt: Int64?,
        updatedAt: Int64,
        finishedAt: Int64?,
        progress: ResyncProgress,
        outcome: String?
    ) {
        self.id = id
        self.scope = scope
        self.requestedBy = requestedBy
        self.requestedAt = requestedAt
        self.state = state
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
        self.progress = progress
        self.outcome = outcome
    }
}

/// The resync request queue shared by the CLI (asks, waits) and the daemon (works, reports).
public protocol ResyncRequestStore: Sendable {
    /// Records a request (operator access is enough) and audits it with `requestedBy`; returns its id.
    /// An unknown `peer` is ``StateStoreError/Code/notFound``.
    func requestResync(peer: String?, type: ResourceType?, patient: NHSNumber?, full: Bool, requestedBy: String)
        async throws(StateStoreError) -> Int64
    /// Requests not finished, oldest first: pending ones and running ones (a daemon that stopped while
    /// running one picks it up again).
    func pendingResyncRequests() async throws(StateStoreError) -> [ResyncRequest]
    /// The daemon starts working on a request: `running`, progress reset.
    func startResync(id: Int64) async throws(StateStoreError)
    /// The daemon reports progress on a running request.
    func updateResyncProgress(id: Int64, _ progress: ResyncProgress) async throws(StateStoreError)
    /// The daemon finished a request (completed or failed), audited.
    func finishResync(id: Int64, _ outcome: ResyncOutcome) async throws(StateStoreError)
    /// One request, for `caresync resync --wait`; `nil` when there is none with that id.
    func resyncRequest(id: Int64) async throws(StateStoreError) -> ResyncRequest?
}

extension SQLiteStateStore: ResyncRequestStore {
    private static let resyncColumns = """
        id, peer, resource_type, nhs_number, full, requested_by, requested_at, state, started_at, updated_at,
        finished_at, done, total, phase, outcome
        """

    public func requestResync(peer: String?, type: ResourceType?, patient: NHSNumber?, full: Bool, requestedBy: String)
        async throws(StateStoreError) -> Int64
    {
        guard !requestedBy.isEmpty else {
            throw StateStoreError(.invalidArgument, "a resync request needs the user who asks for it")
        }
        return try await writeTransaction { tx in
            if let peer { try tx.requirePeers([peer]) }
            try tx.db.execute(
                sql: """
                    INSERT INTO resync_request (peer, resource_type, nhs_number, full, requested_by, requested_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [peer, type?.rawValue, patient?.digits, full, requestedBy, tx.now, tx.now]
            )
            let id = tx.db.lastInsertedRowID
            let scope = ResyncScope(peer: peer, resourceType: type, patient: patient, full: full)
            try tx.appendAudit(
                AuditEvent(
                    actor: requestedBy,
                    action: "resync-requested",
                    peer: peer,
                    nhsNumber: patient,
                    detail: "resync request \(id): \(Self.describe(scope))"
                )
            )
            return id
        }
    }

    public func pendingResyncRequests() async throws(StateStoreError) -> [ResyncRequest] {
        try await readTransaction { db in
            try Row.fetchAll(
                db,
                sql: "SELECT \(Self.resyncColumns) FROM resync_request WHERE state IN ('pending', 'running') ORDER BY id"
            ).map(Self.decodeResync)
        }
    }

    public func startResync(id: Int64) async throws(StateStoreError) {
        try await writeTransaction { tx in
            let state = try Self.resyncState(tx.db, id: id)
            guard !state.isFinished else {
                throw StateStoreError(.invalidArgument, "resync request \(id) is already \(state.rawValue)")
            }
            try tx.db.execute(
                sql: """
                    UPDATE resync_request SET state = 'running', started_at = ?, updated_at = ?, done = 0, total = NULL,
                        phase = NULL
                    WHERE id = ?
                    """,
                arguments: [tx.now, tx.now, id]
            )
        }
    }

    public func updateResyncProgress(id: Int64, _ progress: ResyncProgress) async throws(StateStoreError) {
        guard progress.done >= 0, progress.total.map({ $0 >= 0 }) ?? true else {
            throw StateStoreError(.invalidArgument, "resync progress counts cannot be negative")
        }
        try await writeTransaction { tx in
            let state = try Self.resyncState(tx.db, id: id)
            guard state == .running else {
                throw StateStoreError(.invalidArgument, "resync request \(id) is \(state.rawValue), not running")
            }
            try tx.db.execute(
                sql: "UPDATE resync_request SET done = ?, total = ?, phase = ?, updated_at = ? WHERE id = ?",
                arguments: [progress.done, progress.total, progress.phase, tx.now, id]
            )
        }
    }

    public func finishResync(id: Int64, _ outcome: ResyncOutcome) async throws(StateStoreError) {
        try await writeTransaction { tx in
            guard
                let row = try Row.fetchOne(
                    tx.db,
                    sql: "SELECT \(Self.resyncColumns) FROM resync_request WHERE id = ?",
                    arguments: [id]
                )
            else { throw StateStoreError(.notFound, "no resync request \(id)") }
            let request = try Self.decodeResync(row)
            guard !request.state.isFinished else {
                throw StateStoreError(.invalidArgument, "resync request \(id) is already \(request.state.rawValue)")
            }
            let (state, text, action): (ResyncState, String, String)
            switch outcome {
            case .completed(let summary): (state, text, action) = (.completed, summary, "resync-completed")
            case .failed(let reason): (state, text, action) = (.failed, reason, "resync-failed")
            }
            try tx.db.execute(
                sql: """
                    UPDATE resync_request SET state = ?, outcome = ?, finished_at = ?, updated_at = ?,
                        started_at = coalesce(started_at, ?)
                    WHERE id = ?
                    """,
                arguments: [state.rawValue, text, tx.now, tx.now, tx.now, id]
            )
            try tx.appendAudit(
                AuditEvent(
                    actor: tx.options.systemActor,
                    action: action,
                    peer: request.scope.peer,
                    nhsNumber: request.scope.patient,
                    detail: "resync request \(id) (\(Self.describe(request.scope))): \(text)"
                )
            )
        }
    }

    public func resyncRequest(id: Int64) async throws(StateStoreError) -> ResyncRequest? {
        try await readTransaction { db in
            try Row.fetchOne(
                db,
                sql: "SELECT \(Self.resyncColumns) FROM resync_request WHERE id = ?",
                arguments: [id]
            ).map(Self.decodeResync)
        }
    }

    private static func resyncState(_ db: Database, id: Int64) throws -> ResyncState {
        guard let text = try String.fetchOne(db, sql: "SELECT state FROM resync_request WHERE id = ?", arguments: [id]) else {
            throw StateStoreError(.notFound, "no resync request \(id)")
        }
        guard let state = ResyncState(rawValue: text) else {
            throw StateStoreError(.sqlite, "unreadable state of resync request \(id)")
        }
        return state
    }

    private static func decodeResync(_ row: Row) throws -> ResyncRequest {
        let type: ResourceType?
        if let text = row[2] as String? {
            guard let known = ResourceType(rawValue: text) else {
                throw StateStoreError(.sqlite, "unreadable resource type in a resync request")
            }
            type = known
        } else {
            type = nil
        }
        guard let state = ResyncState(rawValue: row[7]) else {
            throw StateStoreError(.sqlite, "unreadable state of a resync request")
        }
        return ResyncRequest(
            id: row[0],
            scope: ResyncScope(peer: row[1], resourceType: type, patient: Decode.nhsNumber(row[3]), full: row[4]),
            requestedBy: row[5],
            requestedAt: row[6],
            state: state,
            startedAt: row[8],
            updatedAt: row[9],
            finishedAt: row[10],
            progress: ResyncProgress(done: row[11], total: row[12], phase: row[13]),
            outcome: row[14]
        )
    }

    /// `full resync of CarePlan from trust-a for one patient`: for audit details (no NHS number: the
    /// entry's own patient field carries it).
    static func describe(_ scope: ResyncScope) -> String {
        var text = scope.full ? "full resync" : "resync"
        text += " of " + (scope.resourceType?.rawValue ?? "every type")
        text += " from " + (scope.peer ?? "every peer")
        if scope.patient != nil { text += " for one patient" }
        return text
    }
}
