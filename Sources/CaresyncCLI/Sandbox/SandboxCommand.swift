import ArgumentParser
import CaresyncDaemon
import CaresyncHTTP
import FHIRClient
import FHIRJSON
import FHIRModel
import Foundation
import Logging
import StateStore
import SyncEngine

/// `caresync sandbox`: the demo on embedded defaults (DESIGN §7). Three `caresync-store` processes on
/// loopback (the ICB hub and two trusts), synthetic patients, a full sync, then concurrent edits on both
/// sides that merge automatically and one that is a clinical conflict, and a summary.
struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run the demo: a hub and two providers on loopback, synthetic patients, a sync, edits on both sides.",
        discussion: """
            Needs the caresync-store binary beside caresync (swift build builds both). Everything lives in a new \
            temporary directory, kept at the end so the CLI can inspect it (--state-dir); --keep-running leaves \
            the stores and the daemon up until Ctrl-C.
            """
    )

    @Flag(name: .long, help: "Leave the stores and the sync daemon running until interrupted, to try the CLI.")
    var keepRunning = false

    @Option(name: .long, help: "Synthetic patients per provider (1-200).")
    var patients = 3

    func run() async throws {
        guard (1...200).contains(patients) else {
            throw ValidationError("--patients is between 1 and 200")
        }
        let logLevel = CaresyncLogging.bootstrap(level: .warning)
        let sandbox = try Sandbox(patientsPerProvider: patients)
        do {
            try await sandbox.run()
        } catch {
            sandbox.stopStores()
            FileHandle.standardError.write(Data("caresync sandbox: \(error)\n".utf8))
            throw CaresyncExitCode.failure.exitCode
        }
        if keepRunning {
            try await sandbox.keepRunning(logLevel: logLevel)
        }
        sandbox.stopStores()
        print("\nState and store files are kept in \(sandbox.directory) (remove it with: rm -rf \(sandbox.directory)).")
    }
}

/// The demo itself.
final class Sandbox: @unchecked Sendable {
    let directory: String
    let stateDirectory: String
    let patientsPerProvider: Int
    let hub = (name: "icb-hub", ods: "QWE")
    let trusts = [(name: "riverside-acute", ods: "RAX"), (name: "northfield-community", ods: "RYX")]
    private(set) var stores: [String: StoreProcess] = [:]
    private let http = HTTPClient()
    private var clients: [String: FHIRClient] = [:]
    private let started = ContinuousClock.now

    init(patientsPerProvider: Int) throws {
        var template = Array("/tmp/caresync-sandbox-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SandboxError("cannot create a temporary directory") }
        directory = String(cString: made)
        stateDirectory = directory + "/state"
        self.patientsPerProvider = patientsPerProvider
    }

    deinit {
        stopStores()
        http.shutdown()
    }

    func say(_ line: String) {
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(String(format: "[%5.1f s] ", seconds) + line)
        fflush(nil)
    }

    func stopStores() {
        for store in stores.values { store.stop() }
    }

    var configuration: CaresyncConfiguration {
        get throws {
            func peer(_ name: String, _ ods: String) throws -> PeerConfiguration {
                PeerConfiguration(name: name, ods: ods, baseURL: try PeerURL(stores[name]!.baseURL))
            }
            return CaresyncConfiguration(
                state: StateSettings(path: stateDirectory),
                sync: CaresyncDaemon.SyncSettings(interval: .seconds(2), pageSize: 200, clockSkewMargin: .seconds(2)),
                hub: try peer(hub.name, hub.ods),
                providers: try trusts.map { ProviderConfiguration(peer: try peer($0.name, $0.ods), mode: .readWrite) },
                metrics: MetricsSettings(enabled: false),
                log: LogSettings(level: .warning))
        }
    }

    // MARK: The demo

    func run() async throws {
        let binary = try Self.storeBinary()
        say("sandbox in \(directory)")
        for (name, _) in [hub] + trusts {
            let store = try StoreProcess(
                name: name, binary: binary, database: "\(directory)/\(name).sqlite", log: "\(directory)/\(name).log")
            stores[name] = store
            clients[name] = try FHIRClient(endpoint: FHIREndpoint(name: name, baseURL: store.baseURL), http: http)
            say("started caresync-store \(name) at \(store.baseURL)")
        }

        // Seed: each trust holds its own patients; the first patient of the second trust is also a
        // patient of the first (shared care), so the hub's records for that patient fan out.
        let numbers = SyntheticRecords.nhsNumbers(count: patientsPerProvider * 2)
        let givenNames = ["Alex", "Sam", "Jo", "Robin", "Kit", "Charlie", "Morgan", "Jamie"]
        var seeded = 0
        for (trustIndex, trust) in trusts.enumerated() {
            let client = clients[trust.name]!
            var patients = Array(numbers[(trustIndex * patientsPerProvider)..<((trustIndex + 1) * patientsPerProvider)])
            if trustIndex == 0 { patients.append(numbers[patientsPerProvider]) }
            for (index, patient) in patients.enumerated() {
                let system = "https://\(trust.name).example.nhs.uk/Id"
                let value = "\(trust.ods)-\(index + 1)"
                let records: [(ResourceType, JSON)] = [
                    (.carePlan, SyntheticRecords.carePlan(system: system + "/care-plan", value: "CP-" + value, patient: patient, title: "Respiratory care plan")),
                    (.encounter, SyntheticRecords.encounter(system: system + "/encounter", value: "ENC-" + value, patient: patient)),
                    (.relatedPerson,
                     SyntheticRecords.relatedPerson(system: system + "/related-person", value: "RP-" + value, patient: patient, given: givenNames[index % givenNames.count])),
                ]
                for (type, record) in records {
                    _ = try await client.create(type, body: record.serialized(), ifNoneExist: nil, requestID: RequestIdentifier.make())
                    seeded += 1
                }
            }
        }
        say("seeded \(seeded) records for \(numbers.count) synthetic patients (NHS numbers 999 000 0000 - 999 999 9999)")

        // Initial sync.
        var report = try await withEngine { try await $0.syncUntilQuiescent() }
        say("initial sync done: \(report.pulled.values.reduce(0, +)) versions pulled, \(report.decided[.created] ?? 0) records created at the hub, \(report.pushed.values.reduce(0, +)) pushes")
        try await printCounts()

        // Concurrent edits on both sides.
        let riverside = clients[trusts[0].name]!
        let hubClient = clients[hub.name]!
        let planOne = "https://\(trusts[0].name).example.nhs.uk/Id/care-plan|CP-\(trusts[0].ods)-1"
        let planTwo = "https://\(trusts[0].name).example.nhs.uk/Id/care-plan|CP-\(trusts[0].ods)-2"
        let contactOne = "https://\(trusts[0].name).example.nhs.uk/Id/related-person|RP-\(trusts[0].ods)-1"
        // 1. Care plan 1: the hub adds a note, the trust rewrites the description → merged.
        try await edit(hubClient, .carePlan, planOne) { plan in
            var notes = plan["note"]?.arrayValue ?? []
            notes.append(["text": "Reviewed at the ICB multidisciplinary meeting."])
            plan["note"] = .array(notes)
        }
        try await edit(riverside, .carePlan, planOne) { plan in
            plan["description"] = "Pulmonary rehabilitation twice weekly; home oxygen review in June."
        }
        // 2. Related person 1: the hub adds an email, the trust a mobile → both kept.
        try await edit(hubClient, .relatedPerson, contactOne) { person in
            var telecom = person["telecom"]?.arrayValue ?? []
            telecom.append(["system": "email", "value": "nok@example.org", "use": "home"])
            person["telecom"] = .array(telecom)
        }
        try await edit(riverside, .relatedPerson, contactOne) { person in
            var telecom = person["telecom"]?.arrayValue ?? []
            telecom.append(["system": "phone", "value": "07700 900123", "use": "mobile"])
            person["telecom"] = .array(telecom)
        }
        // 3. Care plan 2 (a clinical conflict): the hub adds a note while the trust changes the daily dose
        //    of potassium chloride: never merged automatically.
        if patientsPerProvider >= 2 {
            try await edit(hubClient, .carePlan, planTwo) { plan in
                var notes = plan["note"]?.arrayValue ?? []
                notes.append(["text": "Renal function checked by the GP."])
                plan["note"] = .array(notes)
            }
            try await edit(riverside, .carePlan, planTwo) { plan in
                guard var activities = plan["activity"]?.arrayValue else { return }
                activities[0]["detail"]?["dailyAmount"]?["value"] = 120
                plan["activity"] = .array(activities)
            }
        } else {
            try await edit(hubClient, .carePlan, planOne) { plan in plan["status"] = "completed" }
            try await edit(riverside, .carePlan, planOne) { plan in plan["status"] = "revoked" }
        }
        say("made concurrent edits at the hub and at \(trusts[0].name)")

        report = try await withEngine { try await $0.syncUntilQuiescent() }
        say("second sync done: \(report.decided[.merged] ?? 0) merges (\(report.decisions) automatic decisions), \(report.decided[.conflict] ?? 0) conflict(s), \(report.pushed.values.reduce(0, +)) pushes")
        try await printCounts()
        try await printConflicts()
        try await printMerges()
    }

    /// Runs `body` with an engine over a freshly opened writer store (closed afterwards, so the CLI or
    /// a daemon can take it).
    func withEngine<T>(_ body: (SyncEngine) async throws -> T) async throws -> T {
        let store = try SQLiteStateStore.open(directory: stateDirectory, access: .writer)
        defer { store.close() }
        var logger = Logger(label: "caresync.sandbox")
        logger.logLevel = .warning
        let engine = try SyncEngine.make(
            configuration: try configuration, store: store, http: http, tokens: nil, metrics: nil, observer: nil, logger: logger)
        try await engine.start()
        return try await body(engine)
    }

    /// Reads the record with business identifier `token` at a peer, changes it and writes it back with `If-Match`.
    func edit(_ client: FHIRClient, _ type: ResourceType, _ token: String, change: (inout JSON) -> Void) async throws {
        let page = try await client.search(type, [("identifier", token)])
        guard var resource = page.resources.first, let id = resource["id"]?.stringValue else {
            throw SandboxError("\(client.endpoint.name) has no \(type.rawValue) \(token)")
        }
        let version = resource["meta"]?["versionId"]?.stringValue
        change(&resource)
        _ = try await client.update(type, id: id, body: resource.serialized(), ifMatchVersion: version, requestID: RequestIdentifier.make())
    }

    func printCounts() async throws {
        var lines: [String] = []
        for (name, _) in [hub] + trusts {
            var counts: [String] = []
            for type in ResourceType.synchronised {
                let page = try await clients[name]!.search(type, [("_count", "1000")])
                counts.append("\(page.resources.count) \(type.rawValue)")
            }
            lines.append("  \(name.padding(toLength: 22, withPad: " ", startingAt: 0)) " + counts.joined(separator: ", "))
        }
        print("records per peer:\n" + lines.joined(separator: "\n"))
    }

    func printConflicts() async throws {
        let store = try SQLiteStateStore.open(directory: stateDirectory, access: .reader)
        defer { store.close() }
        let conflicts = try await store.conflicts(includeResolved: false, nhsNumber: nil)
        guard !conflicts.isEmpty else {
            print("no open conflicts")
            return
        }
        print("open conflicts (the hub keeps its value until resolved):")
        for conflict in conflicts {
            let paths = conflict.conflict.paths.map { "\($0.path) [\($0.rule)]" }.joined(separator: ", ")
            print("  #\(conflict.id) \(conflict.conflict.recordKey.resourceType.rawValue) from \(conflict.conflict.peer): \(paths)")
            print("     inspect: caresync conflicts show \(conflict.id) --state-dir \(stateDirectory)")
        }
    }

    func printMerges() async throws {
        let store = try SQLiteStateStore.open(directory: stateDirectory, access: .reader)
        defer { store.close() }
        let entries = try await store.audit(nhsNumber: nil, since: nil, limit: 100_000)
        let merges = entries.filter { $0.event.action == "merged" }
        guard !merges.isEmpty else { return }
        print("automatic merges (from the audit log):")
        for entry in merges.suffix(10) {
            print("  \(entry.event.detail)")
        }
        print("  full history: caresync audit --state-dir \(stateDirectory)")
    }

    /// Keeps the stores up and runs the daemon on them until SIGINT or SIGTERM.
    func keepRunning(logLevel: LogLevelControl) async throws {
        let file = directory + "/caresync.yaml"
        let config = try configuration
        var yaml = """
            # caresync sandbox configuration (written by caresync sandbox)
            state:
              path: \(stateDirectory)
            sync:
              interval: 2s
            metrics:
              enabled: false
            hub:
              name: \(hub.name)
              ods: \(hub.ods)
              baseURL: \(config.hub.baseURL.text)
              auth:
                type: none
            providers:

            """
        for provider in config.providers {
            yaml += """
                  - name: \(provider.name)
                    ods: \(provider.ods)
                    baseURL: \(provider.baseURL.text)
                    mode: read-write
                    auth:
                      type: none

                """
        }
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        print("""

            The stores and the sync daemon keep running (Ctrl-C stops them). Try:
              caresync status --state-dir \(stateDirectory)
              caresync conflicts list --state-dir \(stateDirectory)
              caresync daemon --config \(file)      (after Ctrl-C, to run the daemon on its own)
            Hub: \(config.hub.baseURL.text)   providers: \(config.providers.map(\.baseURL.text).joined(separator: ", "))
            """)
        fflush(nil)
        let loader = ConfigurationLoader(filePath: file)
        let loaded = try await loader.load()
        logLevel.level = .notice
        try await DaemonRuntime.run(
            configuration: loaded, loader: loader, environment: [:], logLevel: logLevel, logger: Logger(label: "caresync.sandbox"))
    }

    /// `caresync-store` beside the running `caresync`.
    static func storeBinary() throws -> String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let candidate = URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("caresync-store").path
        guard FileManager.default.isExecutableFile(atPath: candidate) else {
            throw SandboxError("no caresync-store beside caresync (\(candidate)); build both with: swift build")
        }
        return candidate
    }
}
