/// How a `caresync-store` behaves: where it listens and stores, how strict its version checks are, and
/// which faults and clock skew it injects.
public struct StoreConfiguration: Sendable {
    /// Address to bind (e.g. `127.0.0.1`).
    public var host: String
    /// Port to bind; 0 picks a free one.
    public var port: Int
    /// The SQLite file (created if missing).
    public var databasePath: String
    /// Status for an `If-Match` that does not match: 409 (default) or 412.
    public var versionConflictStatus: Int
    /// Refuse updates of existing resources without `If-Match` (428).
    public var requireIfMatch: Bool
    /// Faults to inject into FHIR requests.
    public var faults: FaultSettings
    /// Seconds added to every timestamp the store writes or reports; when set, stamps are whole seconds.
    public var clockSkewSeconds: Double?
    /// Largest request body accepted (413 above it).
    public var maxBodyBytes: Int
    /// How strictly resources are checked before they are stored (422 when they fail).
    public var validation: StoreValidation

    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        databasePath: String,
        versionConflictStatus: Int = 409,
        requireIfMatch: Bool = false,
        faults: FaultSettings = FaultSettings(),
        clockSkewSeconds: Double? = nil,
        maxBodyBytes: Int = 64 * 1024 * 1024,
        validation: StoreValidation = .r4
    ) {
        self.host = host
        self.port = port
        self.databasePath = databasePath
        self.versionConflictStatus = versionConflictStatus
        self.requireIfMatch = requireIfMatch
        self.faults = faults
        self.clockSkewSeconds = clockSkewSeconds
        self.maxBodyBytes = maxBodyBytes
        self.validation = validation
    }
}

/// How strictly the store checks a resource before storing it.
public enum StoreValidation: String, Sendable, CaseIterable {
    /// FHIR R4 conformance, as a real R4 server checks it (FHIRModel's validator, `r4` profile).
    case r4
    /// Only what a server cannot do without (type, id, meta shape): lets tests seed hostile records
    /// that a provider system might really hold, to see what caresync does with them.
    case minimal
}
