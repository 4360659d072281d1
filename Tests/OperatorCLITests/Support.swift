import CaresyncTestSupport
import FHIRJSON
import FHIRModel
import Foundation
import MergeCore
import StateStore
import Synchronization
import Testing

/// A clock the fixture moves by hand, starting two hours ago, so queued items have real ages when the
/// CLI (which reads the system clock) looks at them.
final class FixtureClock: WallClock {
    private let now: Mutex<Int64>

    init(hoursAgo: Int64 = 2) {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        now = Mutex(Int64(spec.tv_sec) * 1000 - hoursAgo * 3_600_000)
    }

    func nowMilliseconds() -> Int64 { now.withLock { $0 } }

    func advance(minutes: Int64) { now.withLock { $0 += minutes * 60_000 } }

    /// Moves the clock to the real time.
    func catchUp() {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        now.withLock { $0 = Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000 }
    }
}

let patientA = try! NHSNumber(validating: "9434765919")
let patientB = try! NHSNumber(validating: "9434765870")

/// A state directory filled through the StateStore API the way the daemon fills it.
struct StateFixture {
    let directory: TemporaryDirectory
    let clock = FixtureClock()

    init() throws {
        directory = try TemporaryDirectory(prefix: "caresync-cli")
    }

    var stateDirectory: String { directory.path("state").path }

    /// Opens the writer. A writer closed a moment ago may still be locked for a few milliseconds: a child
    /// process another test is starting shares the lock file's open description between its fork and its
    /// exec (where close-on-exec drops it), so `lock-held` is retried briefly.
    func openWriter() async throws -> SQLiteStateStore {
        for _ in 0..<100 {
            do {
                return try SQLiteStateStore.open(directory: stateDirectory, access: .writer, options: StoreOptions(clock: clock))
            } catch {
                guard error.code == .lockHeld else { throw error }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        return try SQLiteStateStore.open(directory: stateDirectory, access: .writer, options: StoreOptions(clock: clock))
    }

    func openReader() throws -> SQLiteStateStore {
        try SQLiteStateStore.open(directory: stateDirectory, access: .reader)
    }

    static let peers = [
        PeerDescriptor(name: "hub", ods: "QWE", baseURL: "https://hub.example.nhs.uk/fhir", mode: .hub),
        PeerDescriptor(name: "trust-a", ods: "RX1", baseURL: "https://fhir.trust-a.example.nhs.uk/R4", mode: .readWrite),
        PeerDescriptor(name: "trust-b", ods: "RX2", baseURL: "https://fhir.trust-b.example.nhs.uk/R4", mode: .readOnly),
    ]

    /// Every peer in step: contacted successfully, cursors set, nothing queued.
    func fillHealthy() async throws {
        let store = try await openWriter()
        defer { store.close() }
        for peer in Self.peers {
            try await store.registerPeer(peer)
            try await store.recordContact(peer: peer.name, .succeeded)
            try await store.recordSyncState(peer: peer.name, .idle, detail: nil, lagMilliseconds: peer.mode == .hub ? nil : 0)
            _ = try await store.storePulledPage(
                PulledPage(peer: peer.name, resourceType: .carePlan, records: [], cursor: SyncCursor(serverTime: "2025-06-15T09:30:00Z")))
        }
    }

    /// What a troubled day looks like: trust-a backing off with queued pushes two hours old, a dead
    /// letter and an open conflict (made by the real merge core); trust-b unreachable.
    @discardableResult
    func fillTroubled() async throws -> TroubledIDs {
        let store = try await openWriter()
        defer { store.close() }
        for peer in Self.peers { try await store.registerPeer(peer) }
        // As the engine records them: the contact's outcome and the sync state (with the lag it measured).
        try await store.recordContact(peer: "hub", .succeeded)
        try await store.recordSyncState(peer: "hub", .idle, detail: nil, lagMilliseconds: nil)
        try await store.recordContact(peer: "trust-a", .failed(message: "HTTP 503 from trust-a: Service Unavailable", state: .failing))
        try await store.recordSyncState(
            peer: "trust-a", .backingOff, detail: "HTTP 503 from trust-a: Service Unavailable", lagMilliseconds: 300_000)
        try await store.recordContact(peer: "trust-b", .failed(message: "cannot connect: Connection refused", state: .disconnected))
        try await store.recordSyncState(peer: "trust-b", .unreachable, detail: "cannot connect: Connection refused", lagMilliseconds: 0)

        let carePlans = [Self.carePlan(id: "cp-1", status: "active", dailyAmount: 1), Self.carePlan(id: "cp-2", status: "active", dailyAmount: 1)]
        _ = try await store.storePulledPage(
            PulledPage(
                peer: "trust-a", resourceType: .carePlan,
                records: carePlans.enumerated().map { index, body in
                    InboxRecord(
                        resourceType: .carePlan, localID: "cp-\(index + 1)", versionID: "2", lastUpdated: "2025-06-15T09:30:00Z",
                        nhsNumber: patientA, content: Array(body.utf8))
                },
                cursor: SyncCursor(serverTime: "2025-06-15T09:30:00Z")))
        _ = try await store.storePulledPage(
            PulledPage(peer: "trust-a", resourceType: .encounter, records: [], cursor: SyncCursor(serverTime: "2025-06-14T08:00:00Z")))

        // Pushes queued two hours ago.
        let receipts = try await store.enqueue([
            Self.push("cp-1", to: "hub", patient: patientA),
            Self.push("cp-2", to: "hub", patient: patientA),
            Self.push("cp-3", to: "trust-a", patient: patientB),
            Self.push("cp-4", to: "trust-a", patient: patientB),
        ])
        clock.advance(minutes: 30)
        // One hub push failed once and waits for its retry; one trust-a push was refused for good.
        let hubLease = try await store.lease(peer: "hub", limit: 1, durationMilliseconds: 60_000)
        try await store.fail(hubLease[0], error: "HTTP 503: Service Unavailable", retryAfterMilliseconds: 3 * 3_600_000)
        let trustLease = try await store.lease(peer: "trust-a", limit: 1, durationMilliseconds: 60_000)
        try await store.deadLetter(trustLease[0], httpStatus: 422, reason: "CarePlan.activity[0].detail.kind: unknown code 'Appointmentx'")

        // A merge that conflicts, committed as the engine commits it.
        clock.advance(minutes: 30)
        let inbox = try await store.pendingInbox(peer: "trust-a", limit: 10)
        let base = try JSON.parse(Array(Self.carePlan(id: "cp-1", status: "active", dailyAmount: 1).utf8))
        let ours = try JSON.parse(Array(Self.carePlan(id: "hub-1", status: "completed", dailyAmount: 2).utf8))
        let theirs = try JSON.parse(Array(Self.carePlan(id: "cp-1", status: "revoked", dailyAmount: 3).utf8))
        let outcome = merge(base: base, ours: ours, theirs: theirs, policy: .default, context: MergeContext(origin: .theirs))
        #expect(outcome.status == .conflict)
        let result = try await store.commitMerge(
            MergeCommit(
                inboxID: inbox[0].id, outcome: .merged,
                conflicts: [
                    NewConflict(
                        peer: "trust-a", recordKey: Self.key("cp-1"), nhsNumber: patientA, base: base.serialized(), ours: ours.serialized(),
                        theirs: theirs.serialized(), paths: outcome.conflicts.map { ConflictPath(path: $0.path, rule: $0.rule) })
                ],
                audit: [
                    AuditEvent(
                        actor: "caresync", action: "merge-conflict", peer: "trust-a", recordKey: Self.key("cp-1"), nhsNumber: patientA,
                        detail: "\(outcome.conflicts.count) paths held for review")
                ]))
        clock.catchUp()
        return TroubledIDs(
            deadLetter: trustLease[0].item.id, conflict: result.conflictIDs[0], queued: receipts.map(\.itemID),
            conflictPaths: outcome.conflicts.map(\.path))
    }

    struct TroubledIDs {
        let deadLetter: Int64
        let conflict: Int64
        let queued: [Int64]
        let conflictPaths: [String]
    }

    static func key(_ value: String) -> GlobalKey {
        GlobalKey(resourceType: .carePlan, identifier: BusinessIdentifier(system: "https://fhir.trust-a.example.nhs.uk/careplan", value: value))
    }

    static func push(_ id: String, to peer: String, patient: NHSNumber) -> PushRequest {
        PushRequest(
            peer: peer, recordKey: key(id), nhsNumber: patient, operation: .update, localID: id, ifMatchVersion: "2",
            body: Array(carePlan(id: id, status: "active", dailyAmount: 1).utf8))
    }

    /// A CarePlan for patient A with one medication activity.
    static func carePlan(id: String, status: String, dailyAmount: Int) -> String {
        """
        {"resourceType":"CarePlan","id":"\(id)","identifier":[{"system":"https://fhir.trust-a.example.nhs.uk/careplan","value":"cp-1"}],\
        "status":"\(status)","intent":"plan",\
        "subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}},\
        "activity":[{"id":"act-1","detail":{"status":"in-progress","description":"Metformin",\
        "dailyAmount":{"value":\(dailyAmount),"unit":"tablet","system":"http://unitsofmeasure.org","code":"{tbl}"}}}]}
        """
    }
}

/// The outcome of running `caresync` to completion.
struct CommandResult {
    let status: Int32
    let output: [String]
    let errors: [String]

    var text: String { output.joined(separator: "\n") }
}

/// Runs the built `caresync` as an operator would.
func caresync(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
    let child = try ChildProcess(executable: TestPaths.product("caresync"), arguments: arguments, environment: environment)
    let status = try await child.waitForExit(timeout: 120)
    return CommandResult(status: status, output: child.output, errors: child.errors)
}

/// The helper scripts beside these tests.
enum Helper {
    static func path(_ name: String) -> String {
        TestPaths.repositoryRoot.appendingPathComponent("Tests/OperatorCLITests/Helpers/\(name)").path
    }

    /// Runs `caresync ARGS` with its standard output on a pseudo-terminal and only `environment` (plus
    /// PATH, HOME and a TERM) set; returns what it wrote there.
    static func onTerminal(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, text: String) {
        let settings = environment.sorted { $0.key < $1.key }.flatMap { ["--env", "\($0.key)=\($0.value)"] }
        let child = try ChildProcess(
            executable: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["python3", path("run_in_pty.py")] + settings + ["--", try TestPaths.product("caresync").path] + arguments)
        let status = try await child.waitForExit(timeout: 120)
        return (status, child.output.joined(separator: "\n"))
    }
}

/// Checks `document` against `Schemas/cli/<schema>` with Python `jsonschema` (independent of caresync).
func expectValid(_ document: String, schema: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let directory = try TemporaryDirectory(prefix: "caresync-schema")
    defer { directory.remove() }
    let file = directory.path("document.json")
    try Data(document.utf8).write(to: file)
    let schemaPath = TestPaths.repositoryRoot.appendingPathComponent("Schemas/cli/\(schema)").path
    let child = try ChildProcess(
        executable: URL(fileURLWithPath: "/usr/bin/env"), arguments: ["python3", Helper.path("schema_check.py"), schemaPath, file.path])
    let status = try await child.waitForExit()
    if status == 3 {
        try #require(ProcessInfo.processInfo.environment["CI"] != "true", "jsonschema is missing in CI", sourceLocation: sourceLocation)
        print("skipped the schema check: Python jsonschema is not installed (make deps installs it)")
        return
    }
    #expect(status == 0, "\(schema): \(child.output.joined(separator: "\n")) \(child.errors.joined(separator: "\n"))", sourceLocation: sourceLocation)
}

/// Parses command output as JSON (FHIRJSON, so number text and member order are kept).
func parseJSON(_ text: String) throws -> JSON {
    try JSON.parse(Array(text.utf8))
}
