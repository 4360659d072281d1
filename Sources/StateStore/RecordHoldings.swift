import FHIRModel
import Foundation
import GRDB

/// What a batch of records holds in the state store, read with a few statements for the whole batch.
struct RecordHoldings {
    var identities: [String: RecordIdentity] = [:]
    /// Bases by record key, then peer: only the wanted peers'.
    var bases: [String: [String: [UInt8]]] = [:]
    /// The id of each record's last queued push, by record key, then peer (every peer).
    var tailIDs: [String: [String: Int64]] = [:]
    /// The last queued pushes of the wanted peers, by outbox id.
    var tails: [Int64: OutboxItem] = [:]
    var conflictPeers: [String: Set<String>] = [:]

    /// The holdings of the records `recordKeys` names; bases and queued pushes are read in full where
    /// `isWanted(record key, peer)`.
    static func read(_ db: Database, recordKeys keys: [String], isWanted: (String, String) -> Bool) throws -> RecordHoldings {
        var held = RecordHoldings()
        held.identities = try identities(db, recordKeys: keys)
        try forEachRow(db, keys, { "SELECT record_key, peer, content FROM base WHERE record_key IN (\($0))" }) { row in
            let key: String = row[0]
            let peer: String = row[1]
            if isWanted(key, peer) { held.bases[key, default: [:]][peer] = [UInt8](row[2] as Data) }
        }
        var fullTails: [Int64] = []
        for peer in try String.fetchAll(db, sql: "SELECT name FROM peer ORDER BY name") {
            try forEachRow(
                db, keys, { "SELECT record_key, max(id) FROM outbox WHERE peer = ? AND record_key IN (\($0)) GROUP BY record_key" },
                leading: [peer]
            ) { row in
                let key: String = row[0]
                let id: Int64 = row[1]
                held.tailIDs[key, default: [:]][peer] = id
                if isWanted(key, peer) { fullTails.append(id) }
            }
        }
        try forEachRow(db, fullTails, { "SELECT \(Columns.outbox) FROM outbox WHERE id IN (\($0))" }) { row in
            let item = try Decode.outboxItem(row)
            held.tails[item.id] = item
        }
        try forEachRow(db, keys, { "SELECT DISTINCT record_key, peer FROM conflict WHERE state = 'open' AND record_key IN (\($0))" }) {
            row in held.conflictPeers[row[0], default: []].insert(row[1])
        }
        return held
    }

    /// The identities of the records `recordKeys` names, by record key: each with its other keys in key
    /// order and the peers holding it in name order.
    static func identities(_ db: Database, recordKeys: [String]) throws -> [String: RecordIdentity] {
        var identities: [String: RecordIdentity] = [:]
        try forEachRow(db, recordKeys, { "SELECT record_key, nhs_number FROM record WHERE record_key IN (\($0))" }) { row in
            let key: String = row[0]
            let canonical = try Decode.globalKey(key)
            identities[key] = RecordIdentity(recordKey: canonical, keys: [canonical], nhsNumber: Decode.nhsNumber(row[1]), peers: [])
        }
        try forEachRow(
            db, recordKeys,
            { "SELECT record_key, alias_key FROM record_alias WHERE record_key IN (\($0)) AND alias_key <> record_key ORDER BY alias_key" }
        ) { row in
            identities[row[0]]?.keys.append(try Decode.globalKey(row[1]))
        }
        try forEachRow(
            db, recordKeys, { "SELECT record_key, peer, local_id, version_id FROM identity WHERE record_key IN (\($0)) ORDER BY peer" }
        ) { row in
            identities[row[0]]?.peers.append(PeerIdentity(peer: row[1], localID: row[2], versionID: row[3]))
        }
        return identities
    }

    /// A record's id at a peer.
    struct LocalID: Hashable {
        var peer: String
        var resourceType: ResourceType
        var id: String

        init(_ peer: String, _ resourceType: ResourceType, _ id: String) {
            self.peer = peer
            self.resourceType = resourceType
            self.id = id
        }
    }

    /// The record keys the lookups' ids and keys name, read for the whole batch.
    static func recordKeys(_ db: Database, _ lookups: [RecordLookup]) throws -> (byLocalID: [LocalID: String], byAlias: [String: String]) {
        var idsByPeer: [String: [ResourceType: Set<String>]] = [:]
        for lookup in lookups {
            if let id = lookup.localID { idsByPeer[lookup.peer, default: [:]][lookup.resourceType, default: []].insert(id) }
        }
        var byLocalID: [LocalID: String] = [:]
        for (peer, idsByType) in idsByPeer {
            for (type, ids) in idsByType {
                try forEachRow(
                    db, Array(ids), { "SELECT local_id, record_key FROM identity WHERE peer = ? AND resource_type = ? AND local_id IN (\($0))" },
                    leading: [peer, type.rawValue]
                ) { row in byLocalID[LocalID(peer, type, row[0])] = row[1] }
            }
        }
        var byAlias: [String: String] = [:]
        try forEachRow(
            db, Array(Set(lookups.flatMap { $0.keys.map(\.description) })),
            { "SELECT alias_key, record_key FROM record_alias WHERE alias_key IN (\($0))" }
        ) { row in byAlias[row[0]] = row[1] }
        return (byLocalID, byAlias)
    }

    /// Runs `sql` (given the `?, ?, …` list for its `IN`) over `values` in chunks, `leading` bound first,
    /// and calls `body` with each row.
    static func forEachRow(
        _ db: Database, _ values: [some DatabaseValueConvertible], _ sql: (String) -> String,
        leading: [any DatabaseValueConvertible] = [], _ body: (Row) throws -> Void
    ) throws {
        var start = values.startIndex
        while start < values.endIndex {
            let chunk = values[start..<min(start + chunkSize, values.endIndex)]
            let statement = try db.makeStatement(sql: sql(Array(repeating: "?", count: chunk.count).joined(separator: ", ")))
            let rows = try Row.fetchCursor(statement, arguments: StatementArguments(leading + chunk.map { $0 as any DatabaseValueConvertible }))
            while let row = try rows.next() { try body(row) }
            start += chunk.count
        }
    }

    /// The most values one statement's `IN` list takes.
    static let chunkSize = 500
}
