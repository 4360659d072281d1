import FHIRModel
import Foundation
import GRDB

/// Column lists shared by the queries and the decoders below (the decoders read by position).
enum Columns {
    static let outbox = """
        id, request_id, peer, record_key, nhs_number, operation, local_id, if_match, body, base_owners,
        attempts, enqueued_at, next_attempt_at, lease_expires_at, last_error, merge_base
        """
    static let deadLetter = """
        id, request_id, peer, record_key, nhs_number, operation, local_id, if_match, body, base_owners,
        attempts, enqueued_at, http_status, reason, dead_at, merge_base
        """
    static let conflict = """
        id, peer, record_key, nhs_number, state, base, ours, theirs, created_at,
        resolution_choice, resolution, resolved_by, resolution_reason, resolved_at
        """
    static let audit = "seq, at, actor, action, peer, record_key, nhs_number, request_id, detail, prev_hash, hash"
    /// Of `inbox i LEFT JOIN inbox_content c ON c.inbox_id = i.id` (rows stored before v5 keep their
    /// content in `inbox.content`).
    static let inbox = """
        i.id, i.peer, i.resource_type, i.local_id, i.version_id, i.last_updated, i.nhs_number,
        coalesce(c.content, i.content), i.received_at
        """
}

enum Decode {
    /// `Type|system|value` back into a key (a FHIR system URI never contains `|`).
    static func globalKey(_ text: String) throws -> GlobalKey {
        let parts = text.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let type = ResourceType(rawValue: String(parts[0])) else {
            throw StateStoreError(.sqlite, "unreadable record key in the database")
        }
        return GlobalKey(resourceType: type, identifier: BusinessIdentifier(system: String(parts[1]), value: String(parts[2])))
    }

    static func nhsNumber(_ digits: String?) -> NHSNumber? {
        digits.flatMap { try? NHSNumber(validating: $0) }
    }

    static func bytes(_ value: Data?) -> [UInt8]? { value.map { [UInt8]($0) } }

    static func lines(_ text: String) -> [String] {
        text.isEmpty ? [] : text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    private static func push(_ row: Row) throws -> PushRequest {
        PushRequest(
            peer: row[2],
            recordKey: try globalKey(row[3]),
            nhsNumber: nhsNumber(row[4]),
            operation: PushOperation(rawValue: row[5]) ?? .update,
            localID: row[6],
            ifMatchVersion: row[7],
            body: [UInt8](row[8] as Data),
            baseOwners: lines(row[9]),
            mergeBase: bytes(row[15])
        )
    }

    static func outboxItem(_ row: Row) throws -> OutboxItem {
        OutboxItem(
            id: row[0],
            requestID: row[1],
            push: try push(row),
            attempts: row[10],
            enqueuedAt: row[11],
            nextAttemptAt: row[12],
            leaseExpiresAt: row[13],
            lastError: row[14]
        )
    }

    static func deadLetter(_ row: Row) throws -> DeadLetter {
        DeadLetter(
            id: row[0],
            requestID: row[1],
            push: try push(row),
            attempts: row[10],
            enqueuedAt: row[11],
            httpStatus: row[12],
            reason: row[13],
            deadAt: row[14]
        )
    }

    static func conflict(_ row: Row, paths: [ConflictPath]) throws -> ConflictRecord {
        let resolution: ConflictResolution? = (row[9] as String?).map { choice in
            ConflictResolution(
                choice: choice,
                content: bytes(row[10]) ?? [],
                resolvedBy: row[11] ?? "",
                reason: row[12] ?? ""
            )
        }
        return ConflictRecord(
            id: row[0],
            state: ConflictRecord.State(rawValue: row[4]) ?? .open,
            conflict: NewConflict(
                peer: row[1],
                recordKey: try globalKey(row[2]),
                nhsNumber: nhsNumber(row[3]),
                base: bytes(row[5]),
                ours: bytes(row[6]),
                theirs: bytes(row[7]),
                paths: paths
            ),
            createdAt: row[8],
            resolution: resolution,
            resolvedAt: row[13]
        )
    }

    static func auditEntry(_ row: Row) throws -> AuditEntry {
        AuditEntry(
            sequence: row[0],
            at: row[1],
            event: AuditEvent(
                actor: row[2],
                action: row[3],
                peer: row[4],
                recordKey: try (row[5] as String?).map(globalKey),
                nhsNumber: nhsNumber(row[6]),
                requestID: row[7],
                detail: row[8]
            ),
            hash: AuditChain.hex([UInt8](row[10] as Data))
        )
    }

    static func auditContent(_ row: Row) -> AuditChain.Content {
        AuditChain.Content(
            sequence: row[0],
            at: row[1],
            actor: row[2],
            action: row[3],
            peer: row[4],
            recordKey: row[5],
            nhsNumber: row[6],
            requestID: row[7],
            detail: row[8]
        )
    }

    static func inboxItem(_ row: Row) throws -> InboxItem {
        guard let type = ResourceType(rawValue: row[2]) else {
            throw StateStoreError(.sqlite, "unreadable resource type in the inbox")
        }
        return InboxItem(
            id: row[0],
            peer: row[1],
            record: InboxRecord(
                resourceType: type,
                localID: row[3],
                versionID: row[4],
                lastUpdated: row[5],
                nhsNumber: nhsNumber(row[6]),
                content: [UInt8](row[7] as Data)
            ),
            receivedAt: row[8]
        )
    }

    // MARK: Cursors

    /// One line per version, `type<TAB>id<TAB>versionId`, in the cursor's order.
    static func encodeSeen(_ seen: [VersionKey]) -> String {
        var text = ""
        text.reserveCapacity(seen.count * 64)
        for key in seen {
            if !text.isEmpty { text += "\n" }
            text += key.resourceType.rawValue
            text += "\t"
            text += key.id
            text += "\t"
            text += key.versionID
        }
        return text
    }

    /// The cursor's newest pulled version from three columns (id, versionId, lastUpdated) starting at
    /// `index`; `nil` when any is NULL.
    static func newestMark(_ row: Row, from index: Int) -> PulledVersionMark? {
        guard let id: String = row[index], let version: String = row[index + 1], let updated: String = row[index + 2] else {
            return nil
        }
        return PulledVersionMark(localID: id, versionID: version, lastUpdated: updated)
    }

    static func decodeSeen(_ text: String) -> [VersionKey] {
        var seen: [VersionKey] = []
        for line in lines(text) {
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard parts.count == 3, let type = ResourceType(rawValue: String(parts[0])) else { continue }
            seen.append(VersionKey(resourceType: type, id: String(parts[1]), versionID: String(parts[2])))
        }
        return seen
    }
}
