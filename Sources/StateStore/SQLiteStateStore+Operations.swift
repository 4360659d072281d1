public import FHIRModel
import Foundation
import GRDB

// The StateStoreProtocol operations: each is one transaction.

extension SQLiteStateStore {
    // MARK: Peers and status

    public func registerPeer(_ peer: PeerDescriptor) async throws(StateStoreError) {
        try await writeTransaction { tx in
            try tx.db.execute(
                sql: """
                    INSERT INTO peer (name, ods, base_url, mode, updated_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET ods = excluded.ods, base_url = excluded.base_url,
                        mode = excluded.mode, updated_at = excluded.updated_at
                    """,
                arguments: [peer.name, peer.ods, peer.baseURL, peer.mode.rawValue, tx.now]
            )
        }
    }

    public func recordContact(peer: String, _ contact: PeerContact) async throws(StateStoreError) {
        try await writeTransaction { tx in
            try tx.requirePeers([peer])
            switch contact {
            case .succeeded:
                try tx.db.execute(
                    sql: "UPDATE peer SET connection_state = 'connected', last_success_at = ?, updated_at = ? WHERE name = ?",
                    arguments: [tx.now, tx.now, peer]
                )
            case .failed(let message, let state):
                try tx.db.execute(
                    sql: """
                        UPDATE peer SET connection_state = ?, last_error = ?, last_error_at = ?, updated_at = ?
                        WHERE name = ?
                        """,
                    arguments: [state.rawValue, message, tx.now, tx.now, peer]
                )
            }
        }
    }

    public func status() async throws(StateStoreError) -> [PeerStatus] {
        try await readTransaction { db in
            var statuses: [PeerStatus] = []
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT p.name, p.ods, p.base_url, p.mode, p.connection_state, p.queue_depth,
                        (SELECT MIN(enqueued_at) FROM outbox WHERE peer = p.name),
                        (SELECT COUNT(*) FROM dead_letter WHERE peer = p.name),
                        (SELECT COUNT(*) FROM conflict WHERE state = 'open' AND peer = p.name),
                        p.last_success_at, p.last_error, p.last_error_at,
                        p.sync_state, p.sync_state_detail, p.sync_state_at, p.lag_ms
                    FROM peer p ORDER BY p.name
                    """
            )
            for row in rows {
                let name: String = row[0]
                var cursors: [ResourceType: SyncCursor] = [:]
                for cursor in try Row.fetchAll(
                    db,
                    sql: """
                        SELECT resource_type, server_time, newest_id, newest_version_id, newest_last_updated
                        FROM cursor WHERE peer = ?
                        """,
                    arguments: [name]
                ) {
                    guard let type = ResourceType(rawValue: cursor[0]) else { continue }
                    cursors[type] = SyncCursor(serverTime: cursor[1], newest: Decode.newestMark(cursor, from: 2))
                }
                statuses.append(
                    PeerStatus(
                        peer: PeerDescriptor(name: name, ods: row[1], baseURL: row[2], mode: PeerMode(rawValue: row[3]) ?? .readOnly),
                        connectionState: ConnectionState(rawValue: row[4]) ?? .unknown,
                        queueDepth: row[5],
                        oldestEnqueuedAt: row[6],
                        deadLetters: row[7],
                        openConflicts: row[8],
                        cursors: cursors,
                        lastSuccessAt: row[9],
                        lastError: row[10],
                        lastErrorAt: row[11],
                        syncState: PeerSyncState(rawValue: row[12]) ?? .idle,
                        syncStateDetail: row[13],
                        syncStateAt: row[14],
                        lagMilliseconds: row[15]
                    )
                )
            }
            return statuses
        }
    }

    // MARK: Pull

    public func storePulledPage(_ page: PulledPage) async throws(StateStoreError) -> Int {
        try await writeTransaction { tx in
            try tx.requirePeers([page.peer])
            var inserted = 0
            // The row holds what identifies the version; its content goes to `inbox_content` (deleted at
            // merge). `RETURNING` gives the row's id whether it was inserted or reopened.
            let statement = try tx.db.cachedStatement(sql: """
                INSERT OR IGNORE INTO inbox (peer, resource_type, local_id, version_id, last_updated, nhs_number,
                    content, received_at)
                VALUES (?, ?, ?, ?, ?, ?, X'', ?)
                RETURNING id
                """
            )
            let reopening = try tx.db.cachedStatement(sql: """
                INSERT INTO inbox (peer, resource_type, local_id, version_id, last_updated, nhs_number, content, received_at)
                VALUES (?, ?, ?, ?, ?, ?, X'', ?)
                ON CONFLICT (peer, resource_type, local_id, version_id) DO UPDATE SET state = 'pending', outcome = NULL,
                    processed_at = NULL, last_updated = excluded.last_updated, content = X'',
                    received_at = excluded.received_at
                WHERE inbox.state = 'merged'
                RETURNING id
                """
            )
            let content = try tx.db.cachedStatement(
                sql: "INSERT OR REPLACE INTO inbox_content (inbox_id, content) VALUES (?, ?)")
            for record in page.records {
                let row = (page.reopen.contains(record.versionKey) ? reopening : statement)
                guard
                    let id = try Int64.fetchOne(
                        row,
                        arguments: [
                            page.peer, record.resourceType.rawValue, record.localID, record.versionID, record.lastUpdated,
                            record.nhsNumber?.digits, tx.now,
                        ])
                else { continue }
                try content.execute(arguments: [id, Data(record.content)])
                inserted += 1
            }
            try tx.db.execute(
                sql: """
                    INSERT INTO cursor (peer, resource_type, server_time, seen, updated_at, newest_id, newest_version_id,
                        newest_last_updated)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (peer, resource_type) DO UPDATE SET server_time = excluded.server_time,
                        seen = excluded.seen, updated_at = excluded.updated_at, newest_id = excluded.newest_id,
                        newest_version_id = excluded.newest_version_id, newest_last_updated = excluded.newest_last_updated
                    """,
                arguments: [
                    page.peer, page.resourceType.rawValue, page.cursor.serverTime, Decode.encodeSeen(page.cursor.seen),
                    tx.now, page.cursor.newest?.localID, page.cursor.newest?.versionID, page.cursor.newest?.lastUpdated,
                ]
            )
            return inserted
        }
    }

    public func cursor(peer: String, resourceType: ResourceType) async throws(StateStoreError) -> SyncCursor? {
        try await readTransaction { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT server_time, seen, newest_id, newest_version_id, newest_last_updated FROM cursor
                    WHERE peer = ? AND resource_type = ?
                    """,
                arguments: [peer, resourceType.rawValue]
            ).map { SyncCursor(serverTime: $0[0], seen: Decode.decodeSeen($0[1]), newest: Decode.newestMark($0, from: 2)) }
        }
    }

    public func pendingInbox(peer: String?, limit: Int) async throws(StateStoreError) -> [InboxItem] {
        try await readTransaction { db in
            let pending = "SELECT \(Columns.inbox) FROM inbox i LEFT JOIN inbox_content c ON c.inbox_id = i.id WHERE i.state = 'pending'"
            let rows: [Row]
            if let peer {
                rows = try Row.fetchAll(db, sql: pending + " AND i.peer = ? ORDER BY i.id LIMIT ?", arguments: [peer, limit])
            } else {
                rows = try Row.fetchAll(db, sql: pending + " ORDER BY i.id LIMIT ?", arguments: [limit])
            }
            return try rows.map(Decode.inboxItem)
        }
    }

    // MARK: Identity and bases

    public func identity(forAnyOf keys: [GlobalKey]) async throws(StateStoreError) -> RecordIdentity? {
        try await readTransaction { db in
            for key in keys {
                if let record = try String.fetchOne(
                    db,
                    sql: "SELECT record_key FROM record_alias WHERE alias_key = ?",
                    arguments: [key.description]
                ) {
                    return try Self.loadIdentity(db, recordKey: record)
                }
            }
            return nil
        }
    }

    public func identity(peer: String, resourceType: ResourceType, localID: String) async throws(StateStoreError)
        -> RecordIdentity?
    {
        try await readTransaction { db in
            guard
                let record = try String.fetchOne(
                    db,
                    sql: "SELECT record_key FROM identity WHERE peer = ? AND resource_type = ? AND local_id = ?",
                    arguments: [peer, resourceType.rawValue, localID]
                )
            else { return nil }
            return try Self.loadIdentity(db, recordKey: record)
        }
    }

    static func loadIdentity(_ db: Database, recordKey: String) throws -> RecordIdentity? {
        try RecordHoldings.identities(db, recordKeys: [recordKey])[recordKey]
    }

    public func peersHolding(nhsNumber: NHSNumber) async throws(StateStoreError) -> [String] {
        try await readTransaction { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT i.peer FROM record r JOIN identity i ON i.record_key = r.record_key
                    WHERE r.nhs_number = ? ORDER BY i.peer
                    """,
                arguments: [nhsNumber.digits]
            )
        }
    }

    public func base(peer: String, recordKey: GlobalKey) async throws(StateStoreError) -> StoredBase? {
        try await readTransaction { db in
            try Row.fetchOne(
                db,
                sql: "SELECT content, updated_at FROM base WHERE record_key = ? AND peer = ?",
                arguments: [recordKey.description, peer]
            ).map { StoredBase(content: [UInt8]($0[0] as Data), updatedAt: $0[1]) }
        }
    }

    // MARK: Merge

    public func commitMerge(_ commit: MergeCommit) async throws(StateStoreError) -> MergeCommitResult {
        try await writeTransaction { tx in try tx.applyMerge(commit) }
    }

    // MARK: Outbox

    public func enqueue(_ pushes: [PushRequest]) async throws(StateStoreError) -> [EnqueueReceipt] {
        guard !pushes.isEmpty else { return [] }
        return try await writeTransaction { tx in
            try tx.requirePeers(pushes.flatMap { [$0.peer] + $0.baseOwners })
            return try pushes.map { try tx.enqueue($0) }
        }
    }

    public func lease(peer: String, limit: Int, durationMilliseconds: Int64) async throws(StateStoreError) -> [LeasedPush] {
        guard limit > 0, durationMilliseconds > 0 else {
            throw StateStoreError(.invalidArgument, "a lease needs a positive limit and duration")
        }
        return try await writeTransaction { tx in
            let token = RequestID.make()
            let expiry = tx.now + durationMilliseconds
            // Due items (a leased item's next_attempt_at is its lease expiry) that are the oldest queued
            // push of their record: a record's later push never overtakes an earlier one.
            let rows = try Row.fetchAll(
                tx.db,
                sql: """
                    SELECT \(Columns.outbox) FROM outbox AS o
                    WHERE o.peer = ? AND o.next_attempt_at <= ?
                      AND NOT EXISTS (
                        SELECT 1 FROM outbox AS e WHERE e.peer = o.peer AND e.record_key = o.record_key AND e.id < o.id)
                    ORDER BY o.next_attempt_at, o.id
                    LIMIT ?
                    """,
                arguments: [peer, tx.now, limit]
            )
            let update = try tx.db.cachedStatement(sql: """
                UPDATE outbox SET attempts = attempts + 1, lease_token = ?, lease_expires_at = ?, next_attempt_at = ?
                WHERE id = ?
                """
            )
            return try rows.map { row in
                var item = try Decode.outboxItem(row)
                try update.execute(arguments: [token, expiry, expiry, item.id])
                item.attempts += 1
                item.nextAttemptAt = expiry
                item.leaseExpiresAt = expiry
                return LeasedPush(item: item, leaseToken: token, leaseExpiresAt: expiry)
            }
        }
    }

    public func complete(_ push: LeasedPush, with completion: PushCompletion) async throws(StateStoreError) {
        try await writeTransaction { tx in try tx.applyCompletion(push, completion) }
    }

    @discardableResult
    public func fail(_ push: LeasedPush, error: String, retryAfterMilliseconds: Int64?) async throws(StateStoreError)
        -> Int64
    {
        try await writeTransaction { tx in
            let item = try Decode.outboxItem(try tx.leasedRow(push))
            let next =
                tx.now
                + tx.options.backoff.delayMilliseconds(
                    failedAttempts: item.attempts,
                    retryAfterMilliseconds: retryAfterMilliseconds,
                    randomUnit: tx.options.random.nextUnit()
                )
            try tx.db.execute(
                sql: """
                    UPDATE outbox SET lease_token = NULL, lease_expires_at = NULL, next_attempt_at = ?, last_error = ?
                    WHERE id = ?
                    """,
                arguments: [next, error, item.id]
            )
            return next
        }
    }

    public func deadLetter(_ push: LeasedPush, httpStatus: Int?, reason: String) async throws(StateStoreError) {
        try await writeTransaction { tx in
            let item = try Decode.outboxItem(try tx.leasedRow(push))
            try tx.db.execute(
                sql: """
                    INSERT INTO dead_letter (id, request_id, peer, record_key, nhs_number, operation, local_id, if_match,
                        body, base_owners, attempts, enqueued_at, http_status, reason, dead_at, merge_base)
                    SELECT id, request_id, peer, record_key, nhs_number, operation, local_id, if_match,
                        body, base_owners, attempts, enqueued_at, ?, ?, ?, merge_base
                    FROM outbox WHERE id = ?
                    """,
                arguments: [httpStatus, reason, tx.now, item.id]
            )
            try tx.deleteOutbox(id: item.id, peer: item.push.peer)
            try tx.appendAudit(
                AuditEvent(
                    actor: tx.options.systemActor,
                    action: "push-dead-lettered",
                    peer: item.push.peer,
                    recordKey: item.push.recordKey,
                    nhsNumber: item.push.nhsNumber,
                    requestID: item.requestID,
                    detail: (httpStatus.map { "HTTP \($0): " } ?? "") + reason
                )
            )
        }
    }

    public func retryDeadLetters(_ selection: DeadLetterSelection, actor: String, reason: String)
        async throws(StateStoreError) -> [EnqueueReceipt]
    {
        try await writeTransaction { tx in
            let rows: [Row]
            switch selection {
            case .ids(let ids):
                rows = try ids.map { id in
                    guard
                        let row = try Row.fetchOne(
                            tx.db,
                            sql: "SELECT \(Columns.deadLetter) FROM dead_letter WHERE id = ?",
                            arguments: [id]
                        )
                    else { throw StateStoreError(.notFound, "no dead letter \(id)") }
                    return row
                }
            case .all(let peer?):
                rows = try Row.fetchAll(
                    tx.db,
                    sql: "SELECT \(Columns.deadLetter) FROM dead_letter WHERE peer = ? ORDER BY id",
                    arguments: [peer]
                )
            case .all(nil):
                rows = try Row.fetchAll(tx.db, sql: "SELECT \(Columns.deadLetter) FROM dead_letter ORDER BY id")
            }
            return try rows.map { row in
                let letter = try Decode.deadLetter(row)
                // Back of its record's queue, same request id; not coalesced, so it never replaces a
                // newer push. Its If-Match / If-None-Exist guard keeps a stale retry from overwriting.
                let id = try tx.insertOutbox(letter.push, requestID: letter.requestID, attempts: 0, enqueuedAt: tx.now)
                try tx.db.execute(sql: "DELETE FROM dead_letter WHERE id = ?", arguments: [letter.id])
                try tx.appendAudit(
                    AuditEvent(
                        actor: actor,
                        action: "dead-letter-retried",
                        peer: letter.push.peer,
                        recordKey: letter.push.recordKey,
                        nhsNumber: letter.push.nhsNumber,
                        requestID: letter.requestID,
                        detail: "dead letter \(letter.id) queued again as item \(id): \(reason)"
                    )
                )
                return EnqueueReceipt(itemID: id, requestID: letter.requestID, supersededRequestID: nil)
            }
        }
    }

    public func queue(peer: String?, limit: Int) async throws(StateStoreError) -> QueueListing {
        try await readTransaction { db in
            let depth: Int
            let oldest: Int64?
            let rows: [Row]
            if let peer {
                depth = try Int.fetchOne(db, sql: "SELECT queue_depth FROM peer WHERE name = ?", arguments: [peer]) ?? 0
                oldest = try Int64.fetchOne(db, sql: "SELECT MIN(enqueued_at) FROM outbox WHERE peer = ?", arguments: [peer])
                rows = try Row.fetchAll(
                    db,
                    sql: "SELECT \(Columns.outbox) FROM outbox WHERE peer = ? ORDER BY next_attempt_at, id LIMIT ?",
                    arguments: [peer, limit]
                )
            } else {
                depth = try Int.fetchOne(db, sql: "SELECT coalesce(SUM(queue_depth), 0) FROM peer") ?? 0
                oldest = try Int64.fetchOne(
                    db,
                    sql: "SELECT MIN((SELECT MIN(enqueued_at) FROM outbox WHERE peer = p.name)) FROM peer p"
                )
                rows = try Row.fetchAll(db, sql: "SELECT \(Columns.outbox) FROM outbox ORDER BY id LIMIT ?", arguments: [limit])
            }
            return QueueListing(depth: depth, oldestEnqueuedAt: oldest, items: try rows.map(Decode.outboxItem))
        }
    }

    public func deadLetters(peer: String?) async throws(StateStoreError) -> [DeadLetter] {
        try await readTransaction { db in
            let rows: [Row]
            if let peer {
                rows = try Row.fetchAll(
                    db,
                    sql: "SELECT \(Columns.deadLetter) FROM dead_letter WHERE peer = ? ORDER BY id",
                    arguments: [peer]
                )
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT \(Columns.deadLetter) FROM dead_letter ORDER BY id")
            }
            return try rows.map(Decode.deadLetter)
        }
    }

    // MARK: Conflicts

    public func conflicts(includeResolved: Bool, nhsNumber: NHSNumber?) async throws(StateStoreError) -> [ConflictRecord] {
        try await readTransaction { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if !includeResolved { conditions.append("state = 'open'") }
            if let nhsNumber {
                conditions.append("nhs_number = ?")
                arguments += [nhsNumber.digits]
            }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT \(Columns.conflict) FROM conflict \(filter) ORDER BY id",
                arguments: arguments
            )
            return try rows.map { try Decode.conflict($0, paths: Self.conflictPaths(db, id: $0[0])) }
        }
    }

    public func conflict(id: Int64) async throws(StateStoreError) -> ConflictRecord? {
        try await readTransaction { db in
            try Row.fetchOne(db, sql: "SELECT \(Columns.conflict) FROM conflict WHERE id = ?", arguments: [id])
                .map { try Decode.conflict($0, paths: Self.conflictPaths(db, id: id)) }
        }
    }

    private static func conflictPaths(_ db: Database, id: Int64) throws -> [ConflictPath] {
        try Row.fetchAll(
            db,
            sql: "SELECT path, rule FROM conflict_path WHERE conflict_id = ? ORDER BY position",
            arguments: [id]
        ).map { ConflictPath(path: $0[0], rule: $0[1]) }
    }

    public func resolveConflict(id: Int64, resolution: ConflictResolution, pushes: [PushRequest])
        async throws(StateStoreError) -> [EnqueueReceipt]
    {
        try await resolveConflict(id: id, resolution: resolution, pushes: pushes, baseUpdates: [], identityLinks: [], queueTails: [])
    }

    /// Resolves an open conflict in one transaction: the resolution, `pushes`, the conflict's provider's
    /// `baseUpdates` and `identityLinks`, and an audit entry naming the resolver and the reason. Refused
    /// with ``StateStoreError/Code/changedMeanwhile`` (nothing written) when a target's last queued push of
    /// the record is no longer the one in `queueTails` (the daemon queued another while it was prepared).
    public func resolveConflict(
        id: Int64, resolution: ConflictResolution, pushes: [PushRequest], baseUpdates: [BaseUpdate], identityLinks: [IdentityLink],
        queueTails: [QueueTailGuard]
    ) async throws(StateStoreError) -> [EnqueueReceipt] {
        guard !resolution.reason.isEmpty, !resolution.resolvedBy.isEmpty else {
            throw StateStoreError(.invalidArgument, "resolving a conflict needs the resolver and a reason")
        }
        return try await writeTransaction { tx in
            guard
                let row = try Row.fetchOne(
                    tx.db,
                    sql: "SELECT state, peer, record_key, nhs_number FROM conflict WHERE id = ?",
                    arguments: [id]
                )
            else { throw StateStoreError(.notFound, "no conflict \(id)") }
            guard (row[0] as String) == "open" else {
                throw StateStoreError(.alreadyResolved, "conflict \(id) is already resolved")
            }
            let recordKey = try Decode.globalKey(row[2])
            for guarded in queueTails {
                let last = try Int64.fetchOne(
                    tx.db,
                    sql: "SELECT id FROM outbox WHERE peer = ? AND record_key = ? ORDER BY id DESC LIMIT 1",
                    arguments: [guarded.peer, recordKey.description]
                )
                guard last == guarded.lastItemID else {
                    throw StateStoreError(
                        .changedMeanwhile,
                        "another push of the record was queued for \(guarded.peer) while the resolution was prepared; nothing was written"
                    )
                }
            }
            try tx.requirePeers(
                pushes.flatMap { [$0.peer] + $0.baseOwners } + baseUpdates.map(\.peer) + identityLinks.map(\.peer))
            try tx.db.execute(
                sql: """
                    UPDATE conflict SET state = 'resolved', resolution_choice = ?, resolution = ?, resolved_by = ?,
                        resolution_reason = ?, resolved_at = ?
                    WHERE id = ?
                    """,
                arguments: [resolution.choice, Data(resolution.content), resolution.resolvedBy, resolution.reason, tx.now, id]
            )
            for link in identityLinks { try tx.link(link) }
            for update in baseUpdates {
                try tx.ensureRecord(update.recordKey, nhsNumber: nil)
                try tx.setBase(peer: update.peer, recordKey: update.recordKey, content: update.content)
            }
            let receipts = try pushes.map { try tx.enqueue($0) }
            try tx.appendAudit(
                AuditEvent(
                    actor: resolution.resolvedBy,
                    action: "conflict-resolved",
                    peer: row[1],
                    recordKey: recordKey,
                    nhsNumber: Decode.nhsNumber(row[3]),
                    detail: "conflict \(id) resolved with \(resolution.choice); \(receipts.count) push(es) queued"
                        + (receipts.isEmpty ? "" : " (" + pushes.map(\.peer).joined(separator: ", ") + ")")
                        + "; reason: \(resolution.reason)"
                )
            )
            return receipts
        }
    }

    // MARK: Audit

    public func appendAudit(_ events: [AuditEvent]) async throws(StateStoreError) {
        try await writeTransaction { tx in
            for event in events { try tx.appendAudit(event) }
        }
    }

    public func audit(nhsNumber: NHSNumber?, since: Int64?, limit: Int) async throws(StateStoreError) -> [AuditEntry] {
        try await readTransaction { db in try Self.auditEntries(db, nhsNumber: nhsNumber, since: since, limit: limit, newest: false) }
    }

    /// Up to `limit` audit entries, optionally for one patient and/or from a time on: the oldest ones, or
    /// the `newest` ones; oldest first either way.
    static func auditEntries(_ db: Database, nhsNumber: NHSNumber?, since: Int64?, limit: Int, newest: Bool) throws -> [AuditEntry] {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let nhsNumber {
            conditions.append("nhs_number = ?")
            arguments += [nhsNumber.digits]
        }
        if let since {
            conditions.append("at >= ?")
            arguments += [since]
        }
        arguments += [limit]
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let entries = try Row.fetchAll(
            db, sql: "SELECT \(Columns.audit) FROM audit \(filter) ORDER BY seq \(newest ? "DESC" : "ASC") LIMIT ?", arguments: arguments
        ).map(Decode.auditEntry)
        return newest ? entries.reversed() : entries
    }

    public func verifyAuditChain() async throws(StateStoreError) -> AuditVerification {
        try await readTransaction { db in
            var previousHash = AuditChain.genesis
            var expected: Int64 = 1
            var count = 0
            let rows = try Row.fetchCursor(db, sql: "SELECT \(Columns.audit) FROM audit ORDER BY seq")
            while let row = try rows.next() {
                let content = Decode.auditContent(row)
                let storedPrevious = [UInt8](row[9] as Data)
                let stored = [UInt8](row[10] as Data)
                if content.sequence != expected {
                    return .broken(
                        sequence: content.sequence,
                        reason: "entry \(expected) is missing (entries must be numbered without gaps)"
                    )
                }
                if storedPrevious != previousHash {
                    return .broken(
                        sequence: content.sequence,
                        reason: "does not link to the entry before it (that entry was deleted or altered)"
                    )
                }
                if AuditChain.hash(previous: storedPrevious, content: content) != stored {
                    return .broken(sequence: content.sequence, reason: "its content does not match its hash (edited)")
                }
                previousHash = stored
                expected += 1
                count += 1
            }
            return .intact(entries: count)
        }
    }
}
