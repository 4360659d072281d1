import Foundation
import GRDB
import Synchronization

/// How a process uses the state store.
public enum StoreAccess: Sendable, Hashable {
    /// The daemon: takes the writer lock file, migrates the schema, runs `PRAGMA quick_check` and
    /// releases leases left by a crash. Only one writer at a time.
    case writer
    /// The CLI's short writes (resolve a conflict, retry dead letters) while the daemon runs: no lock
    /// file, waits on SQLite's busy timeout, never migrates.
    case `operator`
    /// Read-only (status, listings, audit); never writes, never migrates.
    case reader
}

/// Settings of a ``SQLiteStateStore``; the defaults are the production ones.
public struct StoreOptions: Sendable {
    public var clock: any WallClock
    public var random: any RandomSource
    public var backoff: BackoffPolicy
    /// How long a connection waits for another process's write transaction before failing.
    public var busyTimeoutSeconds: Double
    /// WAL pages after which a commit runs a passive checkpoint (`PRAGMA wal_autocheckpoint`).
    public var walAutocheckpointPages: Int
    /// Size the WAL file is truncated back to after a checkpoint (`PRAGMA journal_size_limit`).
    public var journalSizeLimitBytes: Int
    /// The actor named in audit entries the daemon writes by itself.
    public var systemActor: String

    public init(
        clock: any WallClock = SystemWallClock(),
        random: any RandomSource = SystemRandomSource(),
        backoff: BackoffPolicy = .standard,
        busyTimeoutSeconds: Double = 10,
        walAutocheckpointPages: Int = 1000,
        journalSizeLimitBytes: Int = 64 << 20,
        systemActor: String = "caresync"
    ) {
        self.clock = clock
        self.random = random
        self.backoff = backoff
        self.busyTimeoutSeconds = busyTimeoutSeconds
        self.walAutocheckpointPages = walAutocheckpointPages
        self.journalSizeLimitBytes = journalSizeLimitBytes
        self.systemActor = systemActor
    }
}

/// What opening the store as writer found and did.
public struct RecoveryReport: Sendable, Hashable {
    /// Leases left by a previous process, released so their pushes are due again.
    public var leasesReleased: Int
    /// Whether `PRAGMA quick_check` ran (the file existed) and found it sound.
    public var quickCheckPassed: Bool
}

/// The SQLite (GRDB) state store: one database file, `<state dir>/caresync.sqlite`, in WAL mode with
/// `synchronous=FULL`; the writer holds `<state dir>/caresync.lock`. See `docs/state-store.md`.
public final class SQLiteStateStore: StateStoreProtocol {
    public static let databaseFileName = "caresync.sqlite"
    public static let lockFileName = "caresync.lock"

    public let databasePath: String
    public let access: StoreAccess
    public let recovery: RecoveryReport
    let options: StoreOptions
    let pool: DatabasePool
    private let lock: WriterLock?
    private let closed = Mutex(false)

    private init(
        databasePath: String,
        access: StoreAccess,
        options: StoreOptions,
        pool: DatabasePool,
        lock: WriterLock?,
        recovery: RecoveryReport
    ) {
        self.databasePath = databasePath
        self.access = access
        self.options = options
        self.pool = pool
        self.lock = lock
        self.recovery = recovery
    }

    deinit {
        close()
    }

    /// Opens the store in `directory` (created for the writer when missing).
    ///
    /// The writer takes the lock file first, then checks an existing file with `PRAGMA quick_check`
    /// through a read-only connection (a damaged file is reported and left untouched), migrates, and
    /// releases leases left by a previous process. Every access refuses a database written by a newer
    /// caresync.
    public static func open(
        directory: String,
        access: StoreAccess,
        options: StoreOptions = StoreOptions()
    ) throws(StateStoreError) -> SQLiteStateStore {
        let databasePath = directory + "/" + databaseFileName
        var lock: WriterLock?
        if access == .writer {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory,
                    withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700]
                )
            } catch {
                throw StateStoreError(.lockFailed, "cannot create the state directory", path: directory, underlying: "\(error)")
            }
            lock = try WriterLock.acquire(path: directory + "/" + lockFileName)
        }
        do {
            let exists = FileManager.default.fileExists(atPath: databasePath)
            if !exists && access != .writer {
                throw StateStoreError(
                    .databaseMissing,
                    "no state database yet (the daemon creates it on its first start)",
                    path: databasePath
                )
            }
            if exists && access == .writer {
                try quickCheck(databasePath)
            }
            let pool = try openPool(databasePath, access: access, options: options)
            let released: Int
            do {
                try checkSchema(pool, access: access, path: databasePath)
                released = access == .writer ? try releaseLeases(pool, options: options, path: databasePath) : 0
            } catch {
                try? pool.close()
                throw error
            }
            return SQLiteStateStore(
                databasePath: databasePath,
                access: access,
                options: options,
                pool: pool,
                lock: lock,
                recovery: RecoveryReport(leasesReleased: released, quickCheckPassed: exists && access == .writer)
            )
        } catch {
            lock?.release()
            throw translate(error, path: databasePath)
        }
    }

    /// Closes the connections and releases the writer lock. Safe to call more than once.
    public func close() {
        let wasClosed = closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        if access != .reader {
            // Fold the WAL into the database file on a clean stop, so the next start reads one file.
            _ = try? pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        }
        try? pool.close()
        lock?.release()
    }

    /// Runs a WAL checkpoint now: `truncate` empties the WAL file (waits for readers), otherwise passive.
    /// The daemon calls it when idle; `wal_autocheckpoint` bounds the WAL in between.
    public func checkpoint(truncate: Bool) throws(StateStoreError) {
        guard access != .reader else { throw Self.readOnlyError(databasePath) }
        do {
            try pool.writeWithoutTransaction { db in
                _ = try db.checkpoint(truncate ? .truncate : .passive)
            }
        } catch {
            throw Self.translate(error, path: databasePath)
        }
    }

    /// A pragma's value on the writer connection (`synchronous`, `journal_mode`, …), for checks and tests.
    public func writerPragma(_ name: String) throws(StateStoreError) -> String? {
        guard name.allSatisfy({ $0.isLetter || $0 == "_" }) else {
            throw StateStoreError(.invalidArgument, "not a pragma name")
        }
        do {
            return try pool.writeWithoutTransaction { db in
                try String.fetchOne(db, sql: "PRAGMA \(name)")
            }
        } catch {
            throw Self.translate(error, path: databasePath)
        }
    }

    // MARK: Opening

    private static func quickCheck(_ path: String) throws {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.label = "caresync.quick-check"
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? queue.close() }
        let lines = try queue.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
        guard lines == ["ok"] else {
            throw StateStoreError(
                .databaseCorrupt,
                "the state database is damaged (PRAGMA quick_check failed); it was left as it is: restore it from a backup or move it aside",
                path: path,
                underlying: lines.prefix(5).joined(separator: "; ")
            )
        }
    }

    /// The page size of a new state database, in bytes.
    static let pageSize = 16384

    private static func openPool(_ path: String, access: StoreAccess, options: StoreOptions) throws -> DatabasePool {
        var configuration = Configuration()
        configuration.label = "caresync.state"
        configuration.readonly = access == .reader
        configuration.busyMode = .timeout(options.busyTimeoutSeconds)
        configuration.maximumReaderCount = 4
        if access == .writer {
            // Before WAL mode is set: fixes the page size of a new file (an existing one keeps its own).
            // Records and bases are 2–4 KB each; with SQLite's default 4 KB pages most rows took a page
            // of their own, half of it empty. 16 KB pages hold them several to a page.
            configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA page_size = \(pageSize)") }
        }
        let pool = try DatabasePool(path: path, configuration: configuration)
        if access != .reader {
            do {
                try pool.writeWithoutTransaction { db in
                    // GRDB sets synchronous=NORMAL for WAL; caresync wants every commit on disk.
                    try db.execute(sql: "PRAGMA synchronous = FULL")
                    try db.execute(sql: "PRAGMA wal_autocheckpoint = \(options.walAutocheckpointPages)")
                    try db.execute(sql: "PRAGMA journal_size_limit = \(options.journalSizeLimitBytes)")
                }
            } catch {
                try? pool.close()
                throw error
            }
        }
        return pool
    }

    private static func checkSchema(_ pool: DatabasePool, access: StoreAccess, path: String) throws {
        let migrator = Schema.migrator
        let (superseded, complete, applied) = try pool.read { db in
            (try migrator.hasBeenSuperseded(db), try migrator.hasCompletedMigrations(db), try migrator.appliedIdentifiers(db))
        }
        if superseded {
            throw StateStoreError(
                .schemaTooNew,
                "the state database was written by a newer caresync (schema \(applied.sorted().last ?? "?")); upgrade caresync or restore a matching database",
                path: path
            )
        }
        if !complete {
            guard access == .writer else {
                throw StateStoreError(
                    .schemaOutdated,
                    "the state database schema is older than this caresync; start the daemon once to migrate it",
                    path: path
                )
            }
            try migrator.migrate(pool)
        }
    }

    /// Only the lock holder leases, so every lease in the file belongs to a process that has gone. Also
    /// recounts the per-peer queue depths.
    private static func releaseLeases(_ pool: DatabasePool, options: StoreOptions, path: String) throws -> Int {
        try pool.write { db in
            let now = options.clock.nowMilliseconds()
            try db.execute(
                sql: """
                    UPDATE outbox SET lease_token = NULL, lease_expires_at = NULL, next_attempt_at = ?
                    WHERE lease_token IS NOT NULL
                    """,
                arguments: [now]
            )
            let released = db.changesCount
            // Recount the queue depths (cheap over the outbox indexes), so a counter can never drift.
            try db.execute(sql: "UPDATE peer SET queue_depth = (SELECT COUNT(*) FROM outbox WHERE outbox.peer = peer.name)")
            if released > 0 {
                let context = TransactionContext(db: db, now: now, options: options)
                try context.appendAudit(
                    AuditEvent(
                        actor: options.systemActor,
                        action: "leases-released",
                        detail: "released \(released) lease(s) left by a previous process at start"
                    )
                )
            }
            return released
        }
    }

    // MARK: Transactions

    /// Runs `body` in one IMMEDIATE write transaction.
    func writeTransaction<T: Sendable>(
        _ body: @escaping @Sendable (TransactionContext) throws -> T
    ) async throws(StateStoreError) -> T {
        guard access != .reader else { throw Self.readOnlyError(databasePath) }
        let options = self.options
        do {
            return try await pool.write { db in
                let context = TransactionContext(db: db, now: options.clock.nowMilliseconds(), options: options)
                let result = try body(context)
                try context.finish()
                return result
            }
        } catch {
            throw Self.translate(error, path: databasePath)
        }
    }

    /// Runs `body` in one read transaction (a consistent snapshot, concurrent with the writer).
    func readTransaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StateStoreError) -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw Self.translate(error, path: databasePath)
        }
    }

    static func readOnlyError(_ path: String) -> StateStoreError {
        StateStoreError(.readOnly, "the store was opened read-only", path: path)
    }

    static func translate(_ error: any Error, path: String) -> StateStoreError {
        if let error = error as? StateStoreError { return error }
        if let error = error as? DatabaseError {
            switch error.resultCode {
            case .SQLITE_CORRUPT, .SQLITE_NOTADB:
                return StateStoreError(
                    .databaseCorrupt,
                    "the state database is damaged; it was left as it is: restore it from a backup or move it aside",
                    path: path,
                    underlying: error.message
                )
            case .SQLITE_FULL:
                return StateStoreError(
                    .storageFull, "the state directory is full; nothing was written: free space there", path: path,
                    underlying: error.message)
            default:
                return StateStoreError(.sqlite, "SQLite error \(error.resultCode.rawValue)", path: path, underlying: error.message)
            }
        }
        return StateStoreError(.sqlite, "unexpected error", path: path, underlying: "\(error)")
    }
}
