/// Why the state store refused or failed an operation.
///
/// `code` is stable (the CLI and tests match on it); `message` is for people; `path` names the database
/// or lock file when the problem is about a file. Messages never contain NHS numbers or names.
public struct StateStoreError: Error, Sendable, CustomStringConvertible {
    /// A stable identifier for the kind of problem.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// Another process holds the writer lock file (`<state dir>/caresync.lock`).
        public static let lockHeld = Code("lock-held")
        /// The lock file could not be created or locked.
        public static let lockFailed = Code("lock-failed")
        /// `PRAGMA quick_check` failed or SQLite reported the file damaged / not a database.
        public static let databaseCorrupt = Code("database-corrupt")
        /// The database was written by a newer caresync (unknown migrations).
        public static let schemaTooNew = Code("schema-too-new")
        /// The database lacks migrations this binary needs and the store was opened without migrating.
        public static let schemaOutdated = Code("schema-outdated")
        /// Opening read-only or as operator, but no database file exists yet.
        public static let databaseMissing = Code("database-missing")
        /// The lease on an outbox item was lost (expired and taken again, or the item is gone).
        public static let leaseLost = Code("lease-lost")
        /// A referenced row (peer, conflict, dead letter, inbox item) does not exist.
        public static let notFound = Code("not-found")
        /// The conflict was already resolved.
        public static let alreadyResolved = Code("already-resolved")
        /// An argument broke a rule of the API (named in the message).
        public static let invalidArgument = Code("invalid-argument")
        /// An operation that needs the writer was attempted on a read-only store.
        public static let readOnly = Code("read-only")
        /// What an operation was prepared against changed before it was written (nothing was written):
        /// prepare it again.
        public static let changedMeanwhile = Code("changed-meanwhile")
        /// The state directory is full (SQLite's "database or disk is full"): nothing was written.
        public static let storageFull = Code("storage-full")
        /// SQLite reported an error not covered above.
        public static let sqlite = Code("sqlite")

        public var description: String { rawValue }
    }

    public let code: Code
    public let message: String
    /// The file concerned, when there is one.
    public let path: String?
    /// The pid holding the writer lock, for ``Code/lockHeld``.
    public let lockHolderPID: Int32?
    /// The underlying SQLite error text, when there is one.
    public let underlying: String?

    public init(
        _ code: Code,
        _ message: String,
        path: String? = nil,
        lockHolderPID: Int32? = nil,
        underlying: String? = nil
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.lockHolderPID = lockHolderPID
        self.underlying = underlying
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let underlying { text += " (\(underlying))" }
        return text
    }
}
