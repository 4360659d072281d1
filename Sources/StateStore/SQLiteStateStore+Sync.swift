public import FHIRModel
import Foundation
import GRDB

// The SyncStateStoreProtocol operations: each is one transaction.

extension SQLiteStateStore: SyncStateStoreProtocol {
    public func recordContexts(_ lookups: [RecordLookup]) async throws(StateStoreError) -> [RecordContext] {
        guard !lookups.isEmpty else { return [] }
        return try await readTransaction { db in
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
            // First each lookup's patient and record; then what the batch's records hold, a few statements
            // for the whole batch (a merge or a completion looks up hundreds of records at once).
            var contexts: [RecordContext] = []
            var recordKeys: [String?] = []
            let found = try RecordHoldings.recordKeys(db, lookups)
            for lookup in lookups {
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
                // By the id at the peer first, then by each key in turn.
                var recordKey = lookup.localID.flatMap { found.byLocalID[RecordHoldings.LocalID(lookup.peer, lookup.resourceType, $0)] }
                for key in lookup.keys where recordKey == nil {
                    recordKey = found.byAlias[key.description]
                }
                contexts.append(context)
                recordKeys.append(recordKey)
            }
            // Whose bases and queued pushes each record needs in full: every peer's, or the lookups' content peers.
            var everyPeer = Set<String>()
            var somePeers: [String: Set<String>] = [:]
            for (lookup, key) in zip(lookups, recordKeys) {
                guard let key else { continue }
                if let peers = lookup.contentPeers { somePeers[key, default: []].formUnion(peers) } else { everyPeer.insert(key) }
            }
            let held = try RecordHoldings.read(
                db, recordKeys: Array(Set(recordKeys.compactMap { $0 })),
                isWanted: { key, peer in everyPeer.contains(key) || somePeers[key]?.contains(peer) == true })
            for index in contexts.indices {
                guard let key = recordKeys[index] else { continue }
                let isWanted = { (peer: String) in lookups[index].contentPeers?.contains(peer) ?? true }
                contexts[index].identity = held.identities[key]
                contexts[index].bases = held.bases[key, default: [:]].filter { isWanted($0.key) }
                contexts[index].queueTailIDs = held.tailIDs[key, default: [:]]
                for (peer, id) in contexts[index].queueTailIDs where isWanted(peer) {
                    contexts[index].queueTails[peer] = held.tails[id]
                }
                contexts[index].openConflictPeers = held.conflictPeers[key, default: []]
            }
            return contexts
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
