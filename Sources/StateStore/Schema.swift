import GRDB

/// The database schema, as GRDB migrations. A migration, once released, never changes; a new one is
/// appended. A database holding a migration this binary does not know was written by a newer caresync
/// and is refused (``StateStoreError/Code/schemaTooNew``).
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-state-store") { db in
            try db.execute(sql: version1)
        }
        migrator.registerMigration("v2-resync-requests") { db in
            try db.execute(sql: resyncRequests)
        }
        migrator.registerMigration("v3-sync-engine") { db in
            try db.execute(sql: syncEngine)
        }
        migrator.registerMigration("v4-restore-check") { db in
            try db.execute(sql: restoreCheck)
        }
        migrator.registerMigration("v5-inbox-content") { db in
            try db.execute(sql: inboxContent)
        }
        return migrator
    }

    /// Times are INTEGER milliseconds since the Unix epoch; record keys are `GlobalKey.description`
    /// (`Type|system|value`); NHS numbers are the ten digits, stored where operators filter by patient.
    private static let version1 = """
        CREATE TABLE peer (
            name TEXT PRIMARY KEY NOT NULL,
            ods TEXT NOT NULL,
            base_url TEXT NOT NULL,
            mode TEXT NOT NULL,
            connection_state TEXT NOT NULL DEFAULT 'unknown',
            last_success_at INTEGER,
            last_error TEXT,
            last_error_at INTEGER,
            queue_depth INTEGER NOT NULL DEFAULT 0,  -- outbox rows of this peer: adjusted once per transaction, recounted at start
            updated_at INTEGER NOT NULL
        );

        CREATE TABLE cursor (
            peer TEXT NOT NULL REFERENCES peer(name),
            resource_type TEXT NOT NULL,
            server_time TEXT NOT NULL,
            seen TEXT NOT NULL,            -- one `type<TAB>id<TAB>versionId` line per version seen at server_time
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (peer, resource_type)
        ) WITHOUT ROWID;

        CREATE TABLE record (
            record_key TEXT PRIMARY KEY NOT NULL,
            nhs_number TEXT,
            created_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX record_patient ON record(nhs_number) WHERE nhs_number IS NOT NULL;

        CREATE TABLE record_alias (
            alias_key TEXT PRIMARY KEY NOT NULL,
            record_key TEXT NOT NULL REFERENCES record(record_key)
        ) WITHOUT ROWID;
        CREATE INDEX record_alias_record ON record_alias(record_key);

        CREATE TABLE identity (
            record_key TEXT NOT NULL REFERENCES record(record_key),
            peer TEXT NOT NULL REFERENCES peer(name),
            resource_type TEXT NOT NULL,
            local_id TEXT NOT NULL,
            version_id TEXT,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (record_key, peer)
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX identity_local ON identity(peer, resource_type, local_id);

        CREATE TABLE base (
            id INTEGER PRIMARY KEY,
            record_key TEXT NOT NULL REFERENCES record(record_key),
            peer TEXT NOT NULL REFERENCES peer(name),
            content BLOB NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX base_record_peer ON base(record_key, peer);

        CREATE TABLE inbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            peer TEXT NOT NULL REFERENCES peer(name),
            resource_type TEXT NOT NULL,
            local_id TEXT NOT NULL,
            version_id TEXT NOT NULL,
            last_updated TEXT,
            nhs_number TEXT,
            content BLOB NOT NULL,
            received_at INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',  -- pending | merged | quarantined
            outcome TEXT,                            -- the quarantine reason
            processed_at INTEGER
        );
        CREATE UNIQUE INDEX inbox_version ON inbox(peer, resource_type, local_id, version_id);
        CREATE INDEX inbox_pending ON inbox(peer, id) WHERE state = 'pending';

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,   -- enqueue order; per-record order follows it
            request_id TEXT NOT NULL,               -- X-Request-ID, the same on every attempt
            peer TEXT NOT NULL REFERENCES peer(name),
            record_key TEXT NOT NULL,
            nhs_number TEXT,
            operation TEXT NOT NULL,                -- create | update
            local_id TEXT,
            if_match TEXT,
            body BLOB NOT NULL,
            base_owners TEXT NOT NULL,              -- peer names, one per line
            attempts INTEGER NOT NULL DEFAULT 0,    -- times leased; 0 = never sent
            enqueued_at INTEGER NOT NULL,
            next_attempt_at INTEGER NOT NULL,       -- while leased: the lease expiry
            lease_token TEXT,
            lease_expires_at INTEGER,
            last_error TEXT
        );
        CREATE INDEX outbox_record ON outbox(peer, record_key, id);
        CREATE INDEX outbox_due ON outbox(peer, next_attempt_at);
        CREATE INDEX outbox_age ON outbox(peer, enqueued_at);
        CREATE INDEX outbox_leased ON outbox(lease_token) WHERE lease_token IS NOT NULL;

        CREATE TABLE dead_letter (
            id INTEGER PRIMARY KEY,                 -- the outbox id it had
            request_id TEXT NOT NULL,
            peer TEXT NOT NULL REFERENCES peer(name),
            record_key TEXT NOT NULL,
            nhs_number TEXT,
            operation TEXT NOT NULL,
            local_id TEXT,
            if_match TEXT,
            body BLOB NOT NULL,
            base_owners TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            enqueued_at INTEGER NOT NULL,
            http_status INTEGER,
            reason TEXT NOT NULL,
            dead_at INTEGER NOT NULL
        );
        CREATE INDEX dead_letter_peer ON dead_letter(peer, id);

        CREATE TABLE conflict (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            peer TEXT NOT NULL REFERENCES peer(name),
            record_key TEXT NOT NULL,
            nhs_number TEXT,
            state TEXT NOT NULL,                    -- open | resolved
            base BLOB,
            ours BLOB,
            theirs BLOB,
            created_at INTEGER NOT NULL,
            resolution_choice TEXT,
            resolution BLOB,
            resolved_by TEXT,
            resolution_reason TEXT,
            resolved_at INTEGER
        );
        CREATE INDEX conflict_state ON conflict(state, peer);
        CREATE INDEX conflict_patient ON conflict(nhs_number, state);
        CREATE INDEX conflict_record ON conflict(record_key, state);

        CREATE TABLE conflict_path (
            conflict_id INTEGER NOT NULL REFERENCES conflict(id),
            position INTEGER NOT NULL,
            path TEXT NOT NULL,
            rule TEXT NOT NULL,
            PRIMARY KEY (conflict_id, position)
        ) WITHOUT ROWID;

        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,                -- 1, 2, 3, … with no gaps
            at INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            peer TEXT,
            record_key TEXT,
            nhs_number TEXT,
            request_id TEXT,
            detail TEXT NOT NULL,
            prev_hash BLOB NOT NULL,
            hash BLOB NOT NULL                      -- SHA-256(prev_hash ‖ canonical content)
        );
        CREATE INDEX audit_patient ON audit(nhs_number, seq) WHERE nhs_number IS NOT NULL;
        CREATE INDEX audit_at ON audit(at);
        CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit BEGIN
            SELECT RAISE(ABORT, 'the audit log is append-only');
        END;
        CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit BEGIN
            SELECT RAISE(ABORT, 'the audit log is append-only');
        END;
        """

    /// Operators' resync requests (`caresync resync`), which the daemon picks up each cycle and reports
    /// progress on; the CLI waits on `state`.
    private static let resyncRequests = """
        CREATE TABLE resync_request (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            peer TEXT REFERENCES peer(name),        -- NULL: every peer
            resource_type TEXT,                     -- NULL: every synchronised type
            nhs_number TEXT,                        -- NULL: every patient
            full INTEGER NOT NULL DEFAULT 0,        -- 1: read everything again, not only changes since the cursor
            requested_by TEXT NOT NULL,
            requested_at INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',  -- pending | running | completed | failed
            started_at INTEGER,
            updated_at INTEGER NOT NULL,
            finished_at INTEGER,
            done INTEGER NOT NULL DEFAULT 0,        -- units of work done (records, pages: the daemon says)
            total INTEGER,                          -- NULL while not known
            phase TEXT,                             -- what the daemon is doing now, for people
            outcome TEXT                            -- the completion summary or the failure reason
        );
        CREATE INDEX resync_request_open ON resync_request(id) WHERE state IN ('pending', 'running');
        """

    /// The sync engine's additions: the content each queued push was merged against (so a lost race can
    /// be merged again exactly), and each peer's sync activity and lag for `caresync status`.
    private static let syncEngine = """
        ALTER TABLE outbox ADD COLUMN merge_base BLOB;
        ALTER TABLE dead_letter ADD COLUMN merge_base BLOB;
        ALTER TABLE peer ADD COLUMN sync_state TEXT NOT NULL DEFAULT 'idle';
        ALTER TABLE peer ADD COLUMN sync_state_detail TEXT;
        ALTER TABLE peer ADD COLUMN sync_state_at INTEGER;
        ALTER TABLE peer ADD COLUMN lag_ms INTEGER;
        """

    /// The newest version pulled per (peer, type), kept with the cursor: each pull starts early enough to
    /// see it again, so a peer whose store was restored from an older backup is noticed.
    private static let restoreCheck = """
        ALTER TABLE cursor ADD COLUMN newest_id TEXT;
        ALTER TABLE cursor ADD COLUMN newest_version_id TEXT;
        ALTER TABLE cursor ADD COLUMN newest_last_updated TEXT;
        """

    /// A pulled version's content lives in a table of its own while the row is pending or quarantined, and
    /// is deleted when the row is merged: whole rows go, so their pages return to the free list and are
    /// reused, and the inbox no longer grows by the content of every version pulled. `inbox.content` is
    /// empty for rows stored from now on; rows stored before keep theirs there.
    private static let inboxContent = """
        CREATE TABLE inbox_content (
            inbox_id INTEGER PRIMARY KEY REFERENCES inbox(id),
            content BLOB NOT NULL
        );
        """
}
