import Foundation
import GRDB

/// The SQLite file behind the store: every version ever written, the current state of each resource,
/// and the search index of current versions.
///
/// One writer connection (GRDB serialises writes) and a pool of readers, in WAL mode with
/// `synchronous=NORMAL`: a committed write survives a crash of the store process, which is what tests
/// that kill it rely on; a power cut may lose the last few.
///
/// - `version`: one row per version, deletes included (`method = 'DELETE'`, no body). `seq` is the
///   row id: it only grows, and since one writer assigns it together with `last_updated` (which never
///   goes backwards, see ``ServerClock``), `seq` order is `(last_updated, seq)` order is commit order.
/// - `resource`: the latest version of each `(type, id)`, with a `deleted` flag.
/// - `search_token`: `(param, system, value)` rows for each current, non-deleted resource.
struct ResourceDatabase: Sendable {
    let pool: DatabasePool

    /// Opens (creating if needed) the store's SQLite file at `path`.
    init(path: String) throws {
        var configuration = Configuration()
        configuration.maximumReaderCount = 4
        configuration.prepareDatabase { db in
            // No fsync per commit (WAL keeps commits atomic and ordered); a larger page cache and memory-mapped
            // reads keep the writer and the readers off pread().
            try db.execute(sql: "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA mmap_size = 1073741824; PRAGMA wal_autocheckpoint = 4096")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE version (
                        seq INTEGER PRIMARY KEY,
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        last_updated INTEGER NOT NULL,
                        method TEXT NOT NULL,
                        body BLOB,
                        UNIQUE (type, id, version)
                    );
                    CREATE INDEX version_by_type_time ON version (type, last_updated, seq);
                    CREATE TABLE resource (
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        seq INTEGER NOT NULL,
                        last_updated INTEGER NOT NULL,
                        deleted INTEGER NOT NULL,
                        PRIMARY KEY (type, id)
                    ) WITHOUT ROWID;
                    CREATE INDEX resource_by_time ON resource (type, deleted, last_updated, seq);
                    CREATE TABLE search_token (
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        param TEXT NOT NULL,
                        system TEXT NOT NULL,
                        value TEXT NOT NULL,
                        PRIMARY KEY (type, id, param, system, value)
                    ) WITHOUT ROWID;
                    CREATE INDEX search_token_lookup ON search_token (type, param, value, system);
                    """
            )
        }
        try migrator.migrate(pool)
    }

    /// The newest `last_updated` stored, so a restarted clock never stamps below it.
    func newestStamp() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT max(last_updated) FROM version") ?? 0 }
    }
}

/// The current state of one resource.
struct CurrentRow: Sendable {
    var version: Int
    var seq: Int64
    var lastUpdated: Int64
    var deleted: Bool
}

/// One stored version.
struct VersionRow: Sendable {
    var seq: Int64
    var type: String
    var id: String
    var version: Int
    var lastUpdated: Int64
    /// `POST`, `PUT` or `DELETE`.
    var method: String
    /// The resource JSON; `nil` for a delete.
    var body: [UInt8]?
}

/// One row of the search index.
struct SearchToken: Sendable, Hashable {
    var param: String
    var system: String
    var value: String
}

/// The statements the store runs (prepared once per connection and cached).
enum Tables {
    static func current(_ db: Database, type: String, id: String) throws -> CurrentRow? {
        let statement = try db.cachedStatement(
            sql: "SELECT version, seq, last_updated, deleted FROM resource WHERE type = ? AND id = ?"
        )
        guard let row = try Row.fetchOne(statement, arguments: [type, id]) else { return nil }
        return CurrentRow(version: row[0], seq: row[1], lastUpdated: row[2], deleted: row[3])
    }

    static func body(_ db: Database, seq: Int64) throws -> [UInt8]? {
        let statement = try db.cachedStatement(sql: "SELECT body FROM version WHERE seq = ?")
        return try Row.fetchOne(statement, arguments: [seq]).flatMap { bytes($0, 0) }
    }

    static func version(_ db: Database, type: String, id: String, version: Int) throws -> VersionRow? {
        let statement = try db.cachedStatement(
            sql: "SELECT seq, type, id, version, last_updated, method, body FROM version WHERE type = ? AND id = ? AND version = ?"
        )
        return try Row.fetchOne(statement, arguments: [type, id, version]).map(versionRow)
    }

    /// Appends a version and makes it current; returns its sequence number.
    static func append(_ db: Database, type: String, id: String, version: Int, lastUpdated: Int64, method: String, body: [UInt8]?) throws -> Int64 {
        let insert = try db.cachedStatement(
            sql: "INSERT INTO version (type, id, version, last_updated, method, body) VALUES (?, ?, ?, ?, ?, ?)"
        )
        try insert.execute(arguments: [type, id, version, lastUpdated, method, body.map { Data($0) }])
        let seq = db.lastInsertedRowID
        let upsert = try db.cachedStatement(
            sql: """
                INSERT INTO resource (type, id, version, seq, last_updated, deleted) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, seq = excluded.seq,
                    last_updated = excluded.last_updated, deleted = excluded.deleted
                """
        )
        try upsert.execute(arguments: [type, id, version, seq, lastUpdated, body == nil])
        return seq
    }

    /// Replaces the search index rows of `(type, id)`.
    static func index(_ db: Database, type: String, id: String, tokens: [SearchToken], replacing: Bool) throws {
        if replacing {
            let delete = try db.cachedStatement(sql: "DELETE FROM search_token WHERE type = ? AND id = ?")
            try delete.execute(arguments: [type, id])
        }
        guard !tokens.isEmpty else { return }
        let insert = try db.cachedStatement(
            sql: "INSERT OR IGNORE INTO search_token (type, id, param, system, value) VALUES (?, ?, ?, ?, ?)"
        )
        for token in tokens {
            try insert.execute(arguments: [type, id, token.param, token.system, token.value])
        }
    }

    static func versionRow(_ row: Row) -> VersionRow {
        VersionRow(seq: row[0], type: row[1], id: row[2], version: row[3], lastUpdated: row[4], method: row[5], body: bytes(row, 6))
    }

    static func bytes(_ row: Row, _ index: Int) -> [UInt8]? {
        (row[index] as Data?).map { Array($0) }
    }
}
