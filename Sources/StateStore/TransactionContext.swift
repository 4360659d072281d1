import FHIRModel
import Foundation
import GRDB

/// The typed operations of one write transaction. Every public unit of work of ``SQLiteStateStore`` is
/// one `TransactionContext` used inside one `DatabasePool.write`; it never outlives it.
final class TransactionContext {
    let db: Database
    let now: Int64
    let options: StoreOptions
    private var auditHead: (sequence: Int64, hash: [UInt8])?
    /// Outbox rows added (+) or removed (−) per peer in this transaction; applied by ``finish()``.
    private var depthChanges: [String: Int] = [:]
    /// Peers already checked by ``requirePeers(_:)`` in this transaction.
    private var knownPeers: Set<String> = []
    /// Records ``ensureRecord(_:nhsNumber:)`` made sure of in this transaction, and whether it was given
    /// their NHS number (once given, a later call has nothing to add).
    private var ensuredRecords: [String: Bool] = [:]
    /// The outbox rows each lease token still holds, read once per token in this transaction.
    private var leasedByToken: [String: Set<Int64>] = [:]

    init(db: Database, now: Int64, options: StoreOptions) {
        self.db = db
        self.now = now
        self.options = options
    }

    /// Applies the per-peer queue depth changes: one UPDATE per peer per transaction instead of one
    /// per row. Called by the store right before commit.
    func finish() throws {
        for (peer, change) in depthChanges where change != 0 {
            try db.cachedStatement(sql: "UPDATE peer SET queue_depth = queue_depth + ? WHERE name = ?")
                .execute(arguments: [change, peer])
        }
        depthChanges = [:]
    }

    /// Removes an outbox row (completed or dead-lettered; the caller audits it).
    func deleteOutbox(id: Int64, peer: String) throws {
        try db.cachedStatement(sql: "DELETE FROM outbox WHERE id = ?").execute(arguments: [id])
        depthChanges[peer, default: 0] -= db.changesCount
        for token in leasedByToken.keys { leasedByToken[token]?.remove(id) }
    }

    // MARK: Peers

    func requirePeers(_ names: some Sequence<String>) throws {
        for name in Set(names) where !knownPeers.contains(name) {
            let known = try Bool.fetchOne(try db.cachedStatement(sql: "SELECT 1 FROM peer WHERE name = ?"), arguments: [name]) ?? false
            guard known else {
                throw StateStoreError(.notFound, "no peer named '\(name)' is registered")
            }
            knownPeers.insert(name)
        }
    }

    // MARK: Merge

    /// One ``MergeCommit``: the inbox row merged or quarantined (once), pushes, conflicts, identity
    /// links, bases and audit entries.
    func applyMerge(_ commit: MergeCommit) throws -> MergeCommitResult {
        guard
            let state = try String.fetchOne(
                try db.cachedStatement(sql: "SELECT state FROM inbox WHERE id = ?"),
                arguments: [commit.inboxID]
            )
        else {
            throw StateStoreError(.notFound, "no inbox item \(commit.inboxID)")
        }
        guard state == "pending" else {
            throw StateStoreError(.invalidArgument, "inbox item \(commit.inboxID) was already processed (\(state))")
        }
        switch commit.outcome {
        case .merged:
            // The content goes: the base and the peer's own history keep what was merged.
            try db.cachedStatement(sql: "UPDATE inbox SET state = 'merged', outcome = NULL, processed_at = ? WHERE id = ?")
                .execute(arguments: [now, commit.inboxID])
            try db.cachedStatement(sql: "DELETE FROM inbox_content WHERE inbox_id = ?").execute(arguments: [commit.inboxID])
        case .quarantined(let reason):
            try db.cachedStatement(sql: "UPDATE inbox SET state = 'quarantined', outcome = ?, processed_at = ? WHERE id = ?")
                .execute(arguments: [reason, now, commit.inboxID])
        }
        try requirePeers(
            commit.identityLinks.map(\.peer) + commit.baseUpdates.map(\.peer) + commit.pushes.flatMap { [$0.peer] + $0.baseOwners }
                + commit.conflicts.map(\.peer)
        )
        // Links first: a push or conflict in the same commit may name a record this commit creates.
        for link in commit.identityLinks { try self.link(link) }
        for update in commit.baseUpdates {
            try ensureRecord(update.recordKey, nhsNumber: nil)
            try setBase(peer: update.peer, recordKey: update.recordKey, content: update.content)
        }
        let receipts = try commit.pushes.map { try enqueue($0) }
        let conflictIDs = try commit.conflicts.map { try insertConflict($0) }
        for event in commit.audit { try appendAudit(event) }
        return MergeCommitResult(pushes: receipts, conflictIDs: conflictIDs)
    }

    // MARK: Outbox

    /// Enqueues one push: replaces the record's last queued push when it was never leased (coalescing,
    /// audited), otherwise queues behind it.
    func enqueue(_ push: PushRequest) throws -> EnqueueReceipt {
        let recordKey = push.recordKey.description
        let requestID = RequestID.make()
        let tail = try Row.fetchOne(
            try db.cachedStatement(
                sql: "SELECT id, request_id, attempts, lease_token FROM outbox WHERE peer = ? AND record_key = ? ORDER BY id DESC LIMIT 1"
            ),
            arguments: [push.peer, recordKey]
        )
        if let tail, (tail[2] as Int64) == 0, (tail[3] as String?) == nil {
            let id: Int64 = tail[0]
            let superseded: String = tail[1]
            try db.cachedStatement(sql: """
                UPDATE outbox SET request_id = ?, nhs_number = ?, operation = ?, local_id = ?, if_match = ?,
                    body = ?, base_owners = ?, merge_base = ?
                WHERE id = ?
                """
            ).execute(arguments: [
                requestID, push.nhsNumber?.digits, push.operation.rawValue, push.localID, push.ifMatchVersion,
                Data(push.body), push.baseOwners.joined(separator: "\n"), push.mergeBase.map { Data($0) }, id,
            ])
            try appendAudit(
                AuditEvent(
                    actor: options.systemActor,
                    action: "push-superseded",
                    peer: push.peer,
                    recordKey: push.recordKey,
                    nhsNumber: push.nhsNumber,
                    requestID: superseded,
                    detail: "unsent push replaced by a newer one (request \(requestID))"
                )
            )
            return EnqueueReceipt(itemID: id, requestID: requestID, supersededRequestID: superseded)
        }
        let id = try insertOutbox(push, recordKey: recordKey, requestID: requestID, attempts: 0, enqueuedAt: now)
        return EnqueueReceipt(itemID: id, requestID: requestID, supersededRequestID: nil)
    }

    func insertOutbox(
        _ push: PushRequest,
        recordKey: String? = nil,
        requestID: String,
        attempts: Int,
        enqueuedAt: Int64
    ) throws -> Int64 {
        try db.cachedStatement(sql: """
            INSERT INTO outbox (request_id, peer, record_key, nhs_number, operation, local_id, if_match, body,
                base_owners, attempts, enqueued_at, next_attempt_at, merge_base)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        ).execute(arguments: [
            requestID, push.peer, recordKey ?? push.recordKey.description, push.nhsNumber?.digits,
            push.operation.rawValue, push.localID, push.ifMatchVersion, Data(push.body),
            push.baseOwners.joined(separator: "\n"), attempts, enqueuedAt, now, push.mergeBase.map { Data($0) },
        ])
        depthChanges[push.peer, default: 0] += 1
        return db.lastInsertedRowID
    }

    /// A push succeeded: removes it, sets the target's identity and the bases of its base owners, audits.
    /// The leased item is what ``SQLiteStateStore/lease(peer:limit:durationMilliseconds:)`` read: while the
    /// lease holds nothing rewrites the row (coalescing only replaces never-leased rows; a lost-race
    /// recovery and a failure need the lease), so only the lease is checked here, not the row read again.
    func applyCompletion(_ push: LeasedPush, _ completion: PushCompletion) throws {
        try requireLease(push)
        let item = push.item
        try deleteOutbox(id: item.id, peer: item.push.peer)
        let key = item.push.recordKey
        try ensureRecord(key, nhsNumber: item.push.nhsNumber)
        try setIdentity(recordKey: key, peer: item.push.peer, localID: completion.localID, versionID: completion.versionID)
        let base = completion.baseContent ?? item.push.body
        for owner in item.push.baseOwners {
            try setBase(peer: owner, recordKey: key, content: base)
        }
        try appendAudit(
            AuditEvent(
                actor: options.systemActor,
                action: "push-completed",
                peer: item.push.peer,
                recordKey: key,
                nhsNumber: item.push.nhsNumber,
                requestID: item.requestID,
                detail: "\(item.push.operation.rawValue) \(key.resourceType.rawValue)/\(completion.localID)"
                    + (completion.versionID.map { "/_history/\($0)" } ?? "")
                    + " after \(item.attempts) attempt(s)"
            )
        )
    }

    /// ``StateStoreError/Code/leaseLost`` unless `push` is still leased by its holder. A batch of
    /// completions shares one lease: its rows are read once.
    func requireLease(_ push: LeasedPush) throws {
        let held: Set<Int64>
        if let known = leasedByToken[push.leaseToken] {
            held = known
        } else {
            held = Set(
                try Int64.fetchAll(
                    try db.cachedStatement(sql: "SELECT id FROM outbox WHERE lease_token = ?"), arguments: [push.leaseToken]))
            leasedByToken[push.leaseToken] = held
        }
        guard held.contains(push.item.id) else { throw Self.leaseLost(push) }
    }

    static func leaseLost(_ push: LeasedPush) -> StateStoreError {
        StateStoreError(
            .leaseLost,
            "outbox item \(push.item.id) is no longer leased by this worker (the lease expired and was taken again, or the item is gone)"
        )
    }

    /// The leased row, or ``StateStoreError/Code/leaseLost``.
    func leasedRow(_ push: LeasedPush) throws -> Row {
        guard
            let row = try Row.fetchOne(
                try db.cachedStatement(sql: "SELECT \(Columns.outbox) FROM outbox WHERE id = ? AND lease_token = ?"),
                arguments: [push.item.id, push.leaseToken]
            )
        else {
            throw Self.leaseLost(push)
        }
        return row
    }

    // MARK: Identity and bases

    func ensureRecord(_ key: GlobalKey, nhsNumber: NHSNumber?) throws {
        let recordKey = key.description
        if let hadNumber = ensuredRecords[recordKey], hadNumber || nhsNumber == nil { return }
        try db.cachedStatement(sql: """
            INSERT INTO record (record_key, nhs_number, created_at) VALUES (?, ?, ?)
            ON CONFLICT (record_key) DO UPDATE SET nhs_number = coalesce(record.nhs_number, excluded.nhs_number)
            """
        ).execute(arguments: [recordKey, nhsNumber?.digits, now])
        try addAlias(key, to: key)
        ensuredRecords[recordKey] = nhsNumber != nil || ensuredRecords[recordKey] == true
    }

    func addAlias(_ alias: GlobalKey, to record: GlobalKey) throws {
        let existing = try String.fetchOne(
            try db.cachedStatement(sql: "SELECT record_key FROM record_alias WHERE alias_key = ?"),
            arguments: [alias.description]
        )
        if let existing {
            guard existing == record.description else {
                throw StateStoreError(
                    .invalidArgument,
                    "identifier \(alias.identifier.system)|… already belongs to another record; refusing to link two records"
                )
            }
            return
        }
        try db.cachedStatement(sql: "INSERT INTO record_alias (alias_key, record_key) VALUES (?, ?)")
            .execute(arguments: [alias.description, record.description])
    }

    func link(_ link: IdentityLink) throws {
        try ensureRecord(link.recordKey, nhsNumber: link.nhsNumber)
        for alias in link.aliases { try addAlias(alias, to: link.recordKey) }
        try setIdentity(
            recordKey: link.recordKey,
            peer: link.peer,
            localID: link.localID,
            versionID: link.versionID
        )
    }

    func setIdentity(recordKey: GlobalKey, peer: String, localID: String, versionID: String?) throws {
        let holder = try String.fetchOne(
            try db.cachedStatement(sql: "SELECT record_key FROM identity WHERE peer = ? AND resource_type = ? AND local_id = ?"),
            arguments: [peer, recordKey.resourceType.rawValue, localID]
        )
        if let holder, holder != recordKey.description {
            throw StateStoreError(
                .invalidArgument,
                "\(recordKey.resourceType.rawValue)/\(localID) at peer '\(peer)' is already linked to another record"
            )
        }
        try db.cachedStatement(sql: """
            INSERT INTO identity (record_key, peer, resource_type, local_id, version_id, updated_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (record_key, peer) DO UPDATE SET
                local_id = excluded.local_id, version_id = excluded.version_id, updated_at = excluded.updated_at
            """
        ).execute(arguments: [recordKey.description, peer, recordKey.resourceType.rawValue, localID, versionID, now])
    }

    func setBase(peer: String, recordKey: GlobalKey, content: [UInt8]) throws {
        try db.cachedStatement(sql: """
            INSERT INTO base (record_key, peer, content, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (record_key, peer) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at
            """
        ).execute(arguments: [recordKey.description, peer, Data(content), now])
    }

    // MARK: Conflicts

    func insertConflict(_ conflict: NewConflict) throws -> Int64 {
        try db.execute(
            sql: """
                INSERT INTO conflict (peer, record_key, nhs_number, state, base, ours, theirs, created_at)
                VALUES (?, ?, ?, 'open', ?, ?, ?, ?)
                """,
            arguments: [
                conflict.peer, conflict.recordKey.description, conflict.nhsNumber?.digits,
                conflict.base.map { Data($0) }, conflict.ours.map { Data($0) }, conflict.theirs.map { Data($0) }, now,
            ]
        )
        let id = db.lastInsertedRowID
        for (position, path) in conflict.paths.enumerated() {
            try db.execute(
                sql: "INSERT INTO conflict_path (conflict_id, position, path, rule) VALUES (?, ?, ?, ?)",
                arguments: [id, position, path.path, path.rule]
            )
        }
        return id
    }

    // MARK: Audit

    /// Appends one entry to the hash chain.
    func appendAudit(_ event: AuditEvent) throws {
        let head: (sequence: Int64, hash: [UInt8])
        if let cached = auditHead {
            head = cached
        } else if let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")) {
            head = (row[0], [UInt8](row[1] as Data))
        } else {
            head = (0, AuditChain.genesis)
        }
        let content = AuditChain.Content(
            sequence: head.sequence + 1,
            at: now,
            actor: event.actor,
            action: event.action,
            peer: event.peer,
            recordKey: event.recordKey?.description,
            nhsNumber: event.nhsNumber?.digits,
            requestID: event.requestID,
            detail: event.detail
        )
        let hash = AuditChain.hash(previous: head.hash, content: content)
        try db.cachedStatement(sql: """
            INSERT INTO audit (seq, at, actor, action, peer, record_key, nhs_number, request_id, detail, prev_hash, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        ).execute(arguments: [
            content.sequence, content.at, content.actor, content.action, content.peer, content.recordKey,
            content.nhsNumber, content.requestID, content.detail, Data(head.hash), Data(hash),
        ])
        auditHead = (content.sequence, hash)
    }
}

/// `X-Request-ID` values: random (version 4) UUIDs in lower-case text.
enum RequestID {
    static func make() -> String {
        UUID().uuidString.lowercased()
    }
}
