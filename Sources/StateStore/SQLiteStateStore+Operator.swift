public import FHIRModel
import GRDB

// Reads the operator CLI needs beyond StateStoreProtocol.

extension SQLiteStateStore {
    /// The newest `limit` audit entries (optionally for one patient and/or from a time on), returned
    /// oldest first: what `caresync audit` shows by default.
    public func latestAudit(nhsNumber: NHSNumber?, since: Int64?, limit: Int) async throws(StateStoreError) -> [AuditEntry] {
        guard limit > 0 else { throw StateStoreError(.invalidArgument, "an audit listing needs a positive limit") }
        return try await readTransaction { db in
            try Self.auditEntries(db, nhsNumber: nhsNumber, since: since, limit: limit, newest: true)
        }
    }

    /// One audit entry by its sequence number, for showing where the chain breaks.
    public func auditEntry(sequence: Int64) async throws(StateStoreError) -> AuditEntry? {
        try await readTransaction { db in
            try Row.fetchOne(db, sql: "SELECT \(Columns.audit) FROM audit WHERE seq = ?", arguments: [sequence])
                .map(Decode.auditEntry)
        }
    }
}
