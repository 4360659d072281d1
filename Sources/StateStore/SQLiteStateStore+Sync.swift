public import FHIRModel
import Foundation
import GRDB

// The SyncStateStoreProtocol operations: each is one transaction.

extension SQLiteStateStore: SyncStateStoreProtocol {
    public func recordContexts(_ lookups: [RecordLookup]) async throws(StateStoreError) -> [RecordContext] {
        guard !lookups.isEmpty else { return [] }
        return try await readTransaction { db in
            let peers = try String.fetchAll(db, sql: "SELECT name FROM peer ORDER BY name")
            let byLocalID = try db.cachedStatement(
                sql: "SELECT record_key FROM identity WHERE peer = ? AND resource_type = ? AND local_id = ?")
            let byAlias = try db.cachedStatement(sql: "SELECT record_key FROM record_alias WHERE alias_key = ?")
            let bases = try db.cachedStatement(sql: "SELECT peer, content FROM base WHERE record_key = ?")
            let tail = try db.cachedStatement(
                sql: "SELECT \(Columns.outbox) FROM outbox WHERE peer = ? AND record_key = ? ORDER BY id DESC LIMIT 1")
            let tailID = try db.cachedStatement(
                sql: "SELECT id FROM outbox WHERE peer = ? AND record_key = ? ORDER BY id DESC LIMIT 1")
            let conflicts = try db.cachedStatement(
                sql: "SELECT DISTINCT peer FROM conflict WHERE record_key = ? AND state = 'open'")
            let holders = try db.cachedStatement(
                sql: """
                    SELECT DISTINCT i.peer FROM record r JOIN identity i ON i.record_key = r.record_key
                    WHERE r.nhs_number = ?
                    """)
            let patientRecords = try db.cachedStatement(
                sql: """
                    SELECT r.record_key, b.content FROM record r JOIN base b ON b.record_key = r.record_key AND b.peer = ?
                    WHERE r.nhs_number = ?
                    """)
            let recordPeers = try db.cachedStatement(
                sql: """
                    SELECT peer FROM identity WHERE record_key = ?
                    UNION SELECT peer FROM outbox WHERE peer = ? AND record_key = ?
                    """)
            // One snapshot: a patient's holders are the same for every lookup of the batch.
            var holdersByPatient: [String: Set<String>] = [:]
            return try lookups.map { lookup in
                var context = RecordContext(identity: nil)
                if let patient = lookup.patient {
                    if let known = holdersByPatient[patient.digits] {
                        context.patientHolders = known
                    } else {
                        context.patientHolders = Set(try String.fetchAll(holders, arguments: [patient.digits]))
                        holdersByPatient[patient.digits] = context.patientHolders
                    }
                    if let hub = lookup.hubForNewHolder, !context.patientHolders.contains(lookup.peer) {
                        for row in try Row.fetchAll(patientRecords, arguments: [hub, patient.digits]) {
                            let key: String = row[0]
                            context.hubPatientRecords.append(
                                PatientRecord(
                                    recordKey: try Decode.globalKey(key), hubContent: [UInt8](row[1] as Data),
                                    peers: Set(try String.fetchAll(recordPeers, arguments: [key, lookup.peer, key]))))
                        }
                    }
                }
                var recordKey: String?
                if let localID = lookup.localID {
                    recordKey = try String.fetchOne(
                        byLocalID, arguments: [lookup.peer, lookup.resourceType.rawValue, localID])
                }
                for key in lookup.keys where recordKey == nil {
                    recordKey = try String.fetchOne(byAlias, arguments: [key.description])
                }
                guard let recordKey else { return context }
                context.identity = try Self.loadIdentity(db, recordKey: recordKey)
                let rows = try Row.fetchCursor(bases, arguments: [recordKey])
                while let row = try rows.next() {
                    let peer: String = row[0]
                    if lookup.contentPeers?.contains(peer) ?? true {
                        context.bases[peer] = [UInt8](row[1] as Data)
                    }
                }
                for peer in peers {
                    if lookup.contentPeers?.contains(peer) ?? true {
                        if let row = try Row.fetchOne(tail, arguments: [peer, recordKey]) {
                            let item = try Decode.outboxItem(row)
                            context.queueTails[peer] = item
                            context.queueTailIDs[peer] = item.id
                        }
                    } else if let id = try Int64.fetchOne(tailID, arguments: [peer, recordKey]) {
                        context.queueTailIDs[peer] = id
                    }
                }
                context.openConflictPeers = Set(try String.fetchAll(conflicts, arguments: [recordKey]))
                return context
            }
        }
    }

    public func commitMerges(_ commits: [MergeCommit]) async throws(StateStoreError) -> [MergeCommitResult] {
        guard !commits.isEmpty else { return [] }
        return try await writeTransaction { tx in try commits.map { try tx.applyMerge($0) } }
    }

    public func complete(_ pushes: [CompletedPush]) async throws(StateStoreError) -> Set<Int64> {
        guard !pushes.isEmpty else { return [] }
        return try await writeTransaction { tx in
            var lost = Set<Int64>()
            try tx.requirePeers(pushes.flatMap { $0.followUps.flatMap { [$0.peer] + $0.baseOwners } })
            for done in pushes {
                do {
                    try tx.applyCompletion(done.push, done.completion)
                } catch let error as StateStoreError where error.code == .leaseLost {
                    lost.insert(done.push.item.id)
                    continue
                }
                for followUp in done.followUps { _ = try tx.enqueue(followUp) }
            }
            return lost
        }
    }

    public func recoverLostRace(_ push: LeasedPush, _ recovery: LostRaceRecovery) async throws(StateStoreError)
        -> EnqueueReceipt?
    {
        try await writeTransaction { tx in
            let item = try Decode.outboxItem(try tx.leasedRow(push))
            let key = item.push.recordKey
            try tx.requirePeers(recovery.conflicts.map(\.peer))
            if let localID = recovery.targetLocalID {
                try tx.ensureRecord(key, nhsNumber: item.push.nhsNumber)
                try tx.setIdentity(recordKey: key, peer: item.push.peer, localID: localID, versionID: recovery.targetVersionID)
            }
            if let content = recovery.targetContent {
                try tx.ensureRecord(key, nhsNumber: item.push.nhsNumber)
                try tx.setBase(peer: item.push.peer, recordKey: key, content: content)
            }
            let conflictIDs = try recovery.conflicts.map { try tx.insertConflict($0) }
            for event in recovery.audit { try tx.appendAudit(event) }
            let receipt: EnqueueReceipt?
            if let replacement = recovery.replacement {
                let requestID = RequestID.make()
                try tx.db.execute(
                    sql: """
                        UPDATE outbox SET request_id = ?, operation = ?, local_id = ?, if_match = ?, body = ?, merge_base = ?,
                            attempts = 0, lease_token = NULL, lease_expires_at = NULL, next_attempt_at = ?, last_error = ?
                        WHERE id = ?
                        """,
                    arguments: [
                        requestID, replacement.operation.rawValue, replacement.localID, replacement.ifMatchVersion,
                        Data(replacement.body), replacement.mergeBase.map { Data($0) }, tx.now,
                        "merged again after the target changed", item.id,
                    ]
                )
                try tx.appendAudit(
                    AuditEvent(
                        actor: tx.options.systemActor,
                        action: "push-remerged",
                        peer: item.push.peer,
                        recordKey: key,
                        nhsNumber: item.push.nhsNumber,
                        requestID: item.requestID,
                        detail: "the target changed before the push landed; merged again with its current version"
                            + (recovery.targetVersionID.map { " \($0)" } ?? "") + " and queued as request \(requestID)"
                            + (conflictIDs.isEmpty ? "" : "; conflict(s) \(conflictIDs.map(String.init).joined(separator: ", "))")
                    )
                )
                receipt = EnqueueReceipt(itemID: item.id, requestID: requestID, supersededRequestID: item.requestID)
            } else {
                try tx.deleteOutbox(id: item.id, peer: item.push.peer)
                try tx.appendAudit(
                    AuditEvent(
                        actor: tx.options.systemActor,
                        action: "push-withdrawn",
                        peer: item.push.peer,
                        recordKey: key,
                        nhsNumber: item.push.nhsNumber,
                        requestID: item.requestID,
                        detail: "the target changed before the push landed and already holds what it needs, or its own "
                            + "change will be merged at the hub first"
                            + (conflictIDs.isEmpty ? "" : "; conflict(s) \(conflictIDs.map(String.init).joined(separator: ", "))")
                    )
                )
                receipt = nil
            }
            return receipt
        }
    }

    public func recordSyncState(peer: String, _ state: PeerSyncState, detail: String?, lagMilliseconds: Int64?)
        async throws(StateStoreError)
    {
        try await writeTransaction { tx in
            try tx.requirePeers([peer])
            try tx.db.execute(
                sql: """
                    UPDATE peer SET sync_state = ?, sync_state_detail = ?, sync_state_at = ?, lag_ms = coalesce(?, lag_ms),
                        updated_at = ?
                    WHERE name = ?
                    """,
                arguments: [state.rawValue, detail, tx.now, lagMilliseconds, tx.now, peer]
            )
        }
    }

    public func resetCursors(peer: String, resourceType: ResourceType?) async throws(StateStoreError) {
        try await writeTransaction { tx in
            if let resourceType {
                try tx.db.execute(
                    sql: "DELETE FROM cursor WHERE peer = ? AND resource_type = ?", arguments: [peer, resourceType.rawValue])
            } else {
                try tx.db.execute(sql: "DELETE FROM cursor WHERE peer = ?", arguments: [peer])
            }
        }
    }

    public func syncedVersions(peer: String, resourceType: ResourceType, localIDs: [String]) async throws(StateStoreError)
        -> [String: String]
    {
        guard !localIDs.isEmpty else { return [:] }
        return try await readTransaction { db in
            let statement = try db.cachedStatement(
                sql: "SELECT version_id FROM identity WHERE peer = ? AND resource_type = ? AND local_id = ?")
            var versions: [String: String] = [:]
            for id in localIDs {
                if let version = try String.fetchOne(statement, arguments: [peer, resourceType.rawValue, id]) {
                    versions[id] = version
                }
            }
            return versions
        }
    }

    public func inboxCounts(peer: String) async throws(StateStoreError) -> InboxCounts {
        try await readTransaction { db in
            var counts = InboxCounts(pending: 0, merged: 0, quarantined: 0)
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) FROM inbox WHERE peer = ? GROUP BY state", arguments: [peer]) {
                switch row[0] as String {
                case "pending": counts.pending = row[1]
                case "merged": counts.merged = row[1]
                default: counts.quarantined += row[1] as Int
                }
            }
            return counts
        }
    }
}
