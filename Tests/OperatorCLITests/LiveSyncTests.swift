import CaresyncHTTP
import CaresyncTestSupport
import FHIRClient
import FHIRJSON
import FHIRModel
import Foundation
import StateStore
import Testing

/// Three `caresync-store` children (the hub and two read-write trusts), synced by the real engine — first
/// by `caresync resync` running in-process, then by `caresync daemon` — and the operator commands run
/// against the state that leaves, as child processes.
final class LiveCluster: @unchecked Sendable {
    let directory: TemporaryDirectory
    let http = HTTPClient()
    private(set) var stores: [String: (process: ChildProcess, baseURL: String)] = [:]
    private(set) var daemon: ChildProcess?
    let configPath: String

    static let peers = ["hub", "trust-a", "trust-b"]

    /// `trustBFHIRVersion`: trust-b is a small FHIR server speaking that version instead of a caresync-store
    /// (the daemon refuses a peer that is not 4.0.1).
    init(trustBFHIRVersion: String? = nil) async throws {
        directory = try TemporaryDirectory(prefix: "caresync-cli-live")
        for name in Self.peers {
            if name == "trust-b", let version = trustBFHIRVersion {
                let process = try ChildProcess(
                    executable: URL(fileURLWithPath: "/usr/bin/env"),
                    arguments: ["python3", "-u", Helper.path("fhir_peer.py"), "--fhir-version", version])
                let line = try await process.waitForLine { $0.hasPrefix("LISTENING ") }
                stores[name] = (process, "http://127.0.0.1:\(line.dropFirst("LISTENING ".count))/fhir")
                continue
            }
            let process = try ChildProcess(
                executable: TestPaths.product("caresync-store"),
                arguments: ["--listen", "127.0.0.1:0", "--db", directory.path("\(name).sqlite").path, "--log-level", "error"])
            let line = try await process.waitForLine { $0.hasPrefix("listening on ") }
            stores[name] = (process, "http://" + line.dropFirst("listening on ".count) + "/fhir")
        }
        configPath = directory.path("caresync.yaml").path
        try """
            state:
              path: state
            sync:
              interval: 1s
              pageSize: 50
              clockSkewMargin: 2s
            hub:
              name: hub
              ods: QWE
              baseURL: \(stores["hub"]!.baseURL)
              auth: {type: none}
            providers:
              - name: trust-a
                ods: RX1
                baseURL: \(stores["trust-a"]!.baseURL)
                mode: read-write
                auth: {type: none}
              - name: trust-b
                ods: RX2
                baseURL: \(stores["trust-b"]!.baseURL)
                mode: read-write
                scope: all-patients
                auth: {type: none}
            metrics:
              enabled: false
            """.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    deinit {
        daemon?.send(SIGKILL)
        for store in stores.values { store.process.send(SIGKILL) }
        http.shutdown()
        directory.remove()
    }

    var stateDirectory: String { directory.path("state").path }

    func client(_ peer: String) throws -> FHIRClient {
        try FHIRClient(endpoint: FHIREndpoint(name: peer, baseURL: stores[peer]!.baseURL), http: http)
    }

    /// `caresync ARGS --config <this cluster's>`.
    func run(_ arguments: [String]) async throws -> CommandResult {
        try await caresync(arguments + ["--config", configPath])
    }

    /// Starts `caresync daemon` and waits until it holds the writer lock, has migrated the state database
    /// (a reader opens it) and has registered the peers.
    func startDaemon() async throws {
        let process = try ChildProcess(executable: TestPaths.product("caresync"), arguments: ["daemon", "--config", configPath])
        daemon = process
        try await eventually("the daemon has started") {
            guard let text = try? String(contentsOfFile: self.stateDirectory + "/caresync.lock", encoding: .utf8),
                text.trimmingCharacters(in: .whitespacesAndNewlines) == String(process.pid),
                let reader = try? SQLiteStateStore.open(directory: self.stateDirectory, access: .reader)
            else { return false }
            defer { reader.close() }
            return (try? await reader.status().count) == Self.peers.count
        }
    }

    func stopDaemon() async throws {
        guard let daemon else { return }
        daemon.send(SIGTERM)
        #expect(try await daemon.waitForExit() == 0, "the daemon stops cleanly: \(daemon.errors.suffix(5))")
        self.daemon = nil
    }

    // MARK: Records

    static let system = "https://fhir.trust-a.example.nhs.uk/careplan"

    /// Creates a CarePlan for patient A at `peer` with business identifier `value`.
    func createCarePlan(at peer: String, _ value: String, status: String = "active", dose: Int = 1) async throws {
        var resource = try JSON.parse(Array(StateFixture.carePlan(id: "x", status: status, dailyAmount: dose).utf8))
        resource["id"] = nil
        resource["identifier"] = [["system": .string(Self.system), "value": .string(value)]]
        _ = try await client(peer).create(.carePlan, body: resource.serialized(), ifNoneExist: nil, requestID: RequestIdentifier.make())
    }

    /// The CarePlan with identifier `value` at `peer`, if there is one.
    func carePlan(at peer: String, _ value: String) async throws -> JSON? {
        let page = try await client(peer).search(.carePlan, [("identifier", "\(Self.system)|\(value)")])
        return page.resources.first
    }

    /// Reads, changes and writes back (with If-Match) the CarePlan `value` at `peer`.
    func edit(at peer: String, _ value: String, _ change: (inout JSON) -> Void) async throws {
        var resource = try #require(try await carePlan(at: peer, value), "\(peer) has no CarePlan \(value)")
        let id = try #require(resource["id"]?.stringValue)
        let version = resource["meta"]?["versionId"]?.stringValue
        change(&resource)
        _ = try await client(peer).update(.carePlan, id: id, body: resource.serialized(), ifMatchVersion: version, requestID: RequestIdentifier.make())
    }

    static func dose(_ resource: JSON?) -> JSON? {
        resource?["activity"]?.arrayValue?.first?["detail"]?["dailyAmount"]?["value"]
    }
}

/// Polls `condition` every 200 ms until it holds; fails after `limit` seconds (a bound on a failure,
/// not a speed check).
func eventually(_ what: String, limit: Double = 60, _ condition: @escaping () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(limit)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(200))
    }
    Issue.record("timed out waiting until \(what)")
    throw CancellationError()
}

@Suite("Operator commands against a real sync", .serialized)
struct LiveSyncTests {
    /// Everything in step: the record everywhere, then concurrent edits of its daily dose at the hub
    /// (2) and at trust-a (3) that the engine holds as a conflict.
    func clusterWithConflict() async throws -> (LiveCluster, Int64) {
        let cluster = try await LiveCluster()
        try await cluster.createCarePlan(at: "trust-a", "cp-1")
        let first = try await cluster.run(["resync"])
        #expect(first.status == 0, "\(first.output) \(first.errors)")
        #expect(first.output.first?.hasPrefix("no daemon is running on \(cluster.stateDirectory): resync request 1 runs here") == true)
        #expect(first.output.last?.hasPrefix("resync 1 completed in ") == true, "\(first.output)")
        for peer in ["hub", "trust-b"] {
            #expect(LiveCluster.dose(try await cluster.carePlan(at: peer, "cp-1")) == 1, "\(peer) has the record")
        }
        try await cluster.edit(at: "hub", "cp-1") { $0["activity"] = Self.activity(dose: 2) }
        try await cluster.edit(at: "trust-a", "cp-1") { $0["activity"] = Self.activity(dose: 3) }
        // One pass over every peer, the hub first: the hub's edit is known when trust-a's is merged.
        let second = try await cluster.run(["resync"])
        #expect(second.status == 0, "\(second.output) \(second.errors)")
        let list = try await cluster.run(["conflicts", "list", "--json"])
        let conflicts = try #require(try parseJSON(list.text)["conflicts"]?.arrayValue)
        #expect(conflicts.count == 1, "\(list.text)")
        let id = try #require(conflicts.first?["id"]?.numberValue.flatMap { Int64($0.text) })
        return (cluster, id)
    }

    static func activity(dose: Int) -> JSON {
        try! JSON.parse(
            Array(
                #"[{"id":"act-1","detail":{"status":"in-progress","description":"Metformin","dailyAmount":{"value":\#(dose),"unit":"tablet","system":"http://unitsofmeasure.org","code":"{tbl}"}}}]"#
                    .utf8))
    }

    @Test("status, queue, conflicts, audit and peers read what a real sync left; every --json validates")
    func readsRealState() async throws {
        let (cluster, id) = try await clusterWithConflict()

        let status = try await cluster.run(["status"])
        #expect(status.status == 1, "an open conflict needs attention")
        #expect(status.text.contains("trust-a: 1 open conflict (caresync conflicts list)"), "\(status.text)")
        let statusJSON = try parseJSON(try await cluster.run(["status", "--json"]).text)
        for peer in statusJSON["peers"]?.arrayValue ?? [] {
            #expect(peer["cursors"]?.arrayValue?.count == 3, "a cursor per synchronised type: \(peer)")
            #expect(peer["state"] == "idle")
        }

        let show = try await cluster.run(["conflicts", "show", String(id)])
        #expect(show.status == 0)
        #expect(show.text.contains("CarePlan.activity[act-1].detail.dailyAmount  [careplan-activity-daily-amount]"), "\(show.text)")
        #expect(show.text.contains(#"  base:   {"value":1,"#))
        #expect(show.text.contains(#"  ours:   {"value":2,"#))
        #expect(show.text.contains(#"  theirs: {"value":3,"#))

        for (arguments, schema) in [
            (["status", "--json"], "status.schema.json"), (["peers", "--json"], "peers.schema.json"),
            (["queue", "--json"], "queue.schema.json"), (["queue", "--dead", "--json"], "queue.schema.json"),
            (["conflicts", "list", "--all", "--json"], "conflicts-list.schema.json"),
            (["conflicts", "show", String(id), "--json"], "conflicts-show.schema.json"),
            (["audit", "--json"], "audit.schema.json"), (["audit", "verify", "--json"], "audit-verify.schema.json"),
            (["peers", "probe", "hub", "--json"], "probe.schema.json"),
        ] {
            let result = try await cluster.run(arguments)
            #expect(result.errors.isEmpty, "\(arguments): \(result.errors)")
            try await expectValid(result.text, schema: schema)
        }
        let audit = try await cluster.run(["audit", "--patient", patientA.digits])
        #expect(audit.text.contains("merge-conflict"), "\(audit.text)")
        #expect(try await cluster.run(["audit"]).text.contains("resync-requested"))
    }

    @Test("resolve --take theirs: the record reaches every peer through the running daemon, audited, the chain verifies")
    func resolveReachesEveryPeer() async throws {
        let (cluster, id) = try await clusterWithConflict()
        try await cluster.startDaemon()

        let resolved = try await cluster.run(["conflicts", "resolve", String(id), "--take", "theirs", "--reason", "dose confirmed with the GP"])
        #expect(resolved.status == 0, "\(resolved.output) \(resolved.errors)")
        let user = ProcessInfo.processInfo.userName
        #expect(resolved.output.first == "conflict \(id) resolved: theirs at 1 conflicting path; audited as \(user)", "\(resolved.output)")
        #expect(resolved.output.contains { $0.hasPrefix("  queued for hub: update CarePlan/") && $0.contains("If-Match W/\"2\"") }, "\(resolved.output)")
        #expect(resolved.output.contains { $0.hasPrefix("  queued for trust-b: update CarePlan/") }, "\(resolved.output)")
        #expect(!resolved.output.contains { $0.hasPrefix("  queued for trust-a") }, "trust-a already holds its own value")
        #expect(resolved.output.last?.hasPrefix("daemon (pid ") == true)

        for peer in LiveCluster.peers {
            try await eventually("\(peer) holds the resolved dose") {
                LiveCluster.dose(try await cluster.carePlan(at: peer, "cp-1")) == 3
            }
        }
        try await eventually("status is healthy") {
            try await cluster.run(["status"]).status == 0
        }
        let verify = try await cluster.run(["audit", "verify"])
        #expect(verify.status == 0, "\(verify.output)")
        let audit = try await cluster.run(["audit", "--json"])
        let entries = try #require(try parseJSON(audit.text)["entries"]?.arrayValue)
        let entry = try #require(entries.first { $0["action"] == "conflict-resolved" })
        #expect(entry["actor"]?.stringValue == user)
        #expect(entry["detail"]?.stringValue?.hasSuffix("reason: dose confirmed with the GP") == true)
        #expect(entries.contains { $0["action"] == "push-completed" && $0["peer"] == "trust-b" })

        // A second resolve of the same conflict is refused.
        let again = try await cluster.run(["conflicts", "resolve", String(id), "--take", "ours", "--reason", "again"])
        #expect(again.status == 2)
        #expect(again.errors.first?.hasPrefix("caresync conflicts resolve: conflict \(id) is already resolved by ") == true, "\(again.errors)")
        try await cluster.stopDaemon()
    }

    @Test("resolve --value-file: a record edited from show --json is validated, checked and queued; bad files are refused")
    func resolveFromFile() async throws {
        let (cluster, id) = try await clusterWithConflict()
        let show = try await cluster.run(["conflicts", "show", String(id), "--json"])
        var record = try #require(try parseJSON(show.text)["ours"])
        record["activity"] = Self.activity(dose: 4)

        // Refused first, and nothing written: another patient, an invalid record, another record.
        var otherPatient = record
        otherPatient["subject"] = ["identifier": ["system": "https://fhir.nhs.uk/Id/nhs-number", "value": .string(patientB.digits)]]
        var invalid = record
        invalid["status"] = "actve"
        var otherRecord = record
        otherRecord["identifier"] = [["system": "https://elsewhere.example/careplan", "value": "zz"]]
        for (name, value, message) in [
            ("patient.json", otherPatient, "about another patient"), ("invalid.json", invalid, "is not valid: CarePlan.status"),
            ("record.json", otherRecord, "does not carry the record's identifier"),
        ] {
            let file = cluster.directory.path(name).path
            try Data(value.serialized()).write(to: URL(fileURLWithPath: file))
            let refused = try await cluster.run(["conflicts", "resolve", String(id), "--value-file", file, "--reason", "r"])
            #expect(refused.status == 2, "\(name)")
            #expect(refused.errors.count == 1)
            #expect(refused.errors.first?.contains(message) == true, "\(name): \(refused.errors)")
        }
        let garbage = cluster.directory.path("garbage.json").path
        try Data("{\"resourceType\": ".utf8).write(to: URL(fileURLWithPath: garbage))
        let notJSON = try await cluster.run(["conflicts", "resolve", String(id), "--value-file", garbage, "--reason", "r"])
        #expect(notJSON.status == 2)
        #expect(try await cluster.run(["conflicts", "list"]).text.contains("1 open conflict"))

        let file = cluster.directory.path("resolved.json").path
        try Data(record.serialized(.pretty)).write(to: URL(fileURLWithPath: file))
        let resolved = try await cluster.run(["conflicts", "resolve", String(id), "--value-file", file, "--reason", "agreed at the MDT"])
        #expect(resolved.status == 0, "\(resolved.output) \(resolved.errors)")
        #expect(resolved.output.first == "conflict \(id) resolved: value from resolved.json; audited as \(ProcessInfo.processInfo.userName)")
        #expect(resolved.output.contains { $0.hasPrefix("  queued for trust-a: update CarePlan/") && $0.contains("If-Match W/\"2\"") }, "\(resolved.output)")
        #expect(resolved.output.last == "no daemon is running: they are sent when it starts (or run caresync resync)")

        // No daemon: the in-process resync sends them.
        let sync = try await cluster.run(["resync"])
        #expect(sync.status == 0)
        for peer in LiveCluster.peers {
            #expect(LiveCluster.dose(try await cluster.carePlan(at: peer, "cp-1")) == 4, "\(peer) holds the file's dose")
        }
        #expect(try await cluster.run(["audit", "verify"]).status == 0)
        #expect(try await cluster.run(["status"]).status == 0)
    }

    @Test("resolve --take base --path: only that path takes base, the others keep the hub's value")
    func resolveOnePath() async throws {
        let cluster = try await LiveCluster()
        try await cluster.createCarePlan(at: "trust-a", "cp-2")
        #expect(try await cluster.run(["resync"]).status == 0)
        try await cluster.edit(at: "hub", "cp-2") {
            $0["status"] = "completed"
            $0["activity"] = Self.activity(dose: 2)
        }
        try await cluster.edit(at: "trust-a", "cp-2") {
            $0["status"] = "revoked"
            $0["activity"] = Self.activity(dose: 3)
        }
        #expect(try await cluster.run(["resync"]).status == 0)
        let list = try parseJSON(try await cluster.run(["conflicts", "list", "--json"]).text)
        let conflict = try #require(list["conflicts"]?.arrayValue?.first)
        let id = try #require(conflict["id"]?.numberValue?.text)
        let paths = conflict["paths"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []
        #expect(Set(paths) == ["CarePlan.status", "CarePlan.activity[act-1].detail.dailyAmount"], "\(paths)")

        let unknown = try await cluster.run(["conflicts", "resolve", id, "--take", "base", "--path", "CarePlan.intent", "--reason", "r"])
        #expect(unknown.status == 2)
        #expect(unknown.errors.first?.contains("--path CarePlan.intent is not a conflicting path of conflict \(id)") == true, "\(unknown.errors)")

        let resolved = try await cluster.run(["conflicts", "resolve", id, "--take", "base", "--path", "CarePlan.status", "--reason", "reopened"])
        #expect(resolved.status == 0, "\(resolved.output) \(resolved.errors)")
        #expect(resolved.output.first?.contains("base at CarePlan.status; ours elsewhere") == true, "\(resolved.output)")
        #expect(try await cluster.run(["resync"]).status == 0)
        for peer in LiveCluster.peers {
            let record = try await cluster.carePlan(at: peer, "cp-2")
            #expect(record?["status"] == "active", "\(peer): base at the chosen path")
            #expect(LiveCluster.dose(record) == 2, "\(peer): the hub's value elsewhere")
        }
    }

    @Test("a conflict recorded on a lost race at the hub (named after the hub) resolves too")
    func lostRaceConflict() async throws {
        let cluster = try await LiveCluster()
        try await cluster.createCarePlan(at: "trust-a", "cp-4")
        #expect(try await cluster.run(["resync"]).status == 0)
        try await cluster.edit(at: "hub", "cp-4") { $0["activity"] = Self.activity(dose: 2) }
        try await cluster.edit(at: "trust-a", "cp-4") { $0["activity"] = Self.activity(dose: 3) }
        // Only trust-a is read: its change is pushed to the hub against the hub's old version, loses the
        // race (409), and is merged again with the hub's new version: the conflict is recorded there.
        #expect(try await cluster.run(["resync", "--peer", "trust-a"]).status == 0)
        let list = try parseJSON(try await cluster.run(["conflicts", "list", "--json"]).text)
        let conflict = try #require(list["conflicts"]?.arrayValue?.first)
        #expect(conflict["peer"] == "hub")
        let id = try #require(conflict["id"]?.numberValue?.text)
        let show = try await cluster.run(["conflicts", "show", id])
        #expect(show.output[1] == "  between the hub (ours) and a merged change that lost a race to it (theirs), patient *******919", "\(show.output)")

        let resolved = try await cluster.run(["conflicts", "resolve", id, "--take", "ours", "--reason", "the hub's dose stands"])
        #expect(resolved.status == 0, "\(resolved.output) \(resolved.errors)")
        #expect(try await cluster.run(["resync"]).status == 0)
        for peer in LiveCluster.peers {
            #expect(LiveCluster.dose(try await cluster.carePlan(at: peer, "cp-4")) != nil, "\(peer) holds the record")
        }
        #expect(LiveCluster.dose(try await cluster.carePlan(at: "hub", "cp-4")) == 2)
        #expect(try await cluster.run(["audit", "verify"]).status == 0)
    }

    @Test("a refused wrong-patient merge is only closed keeping the hub's record, with nothing pushed")
    func wrongPatient() async throws {
        let cluster = try await LiveCluster()
        try await cluster.createCarePlan(at: "trust-a", "cp-5")
        #expect(try await cluster.run(["resync"]).status == 0)
        try await cluster.edit(at: "trust-a", "cp-5") {
            $0["subject"] = ["identifier": ["system": "https://fhir.nhs.uk/Id/nhs-number", "value": .string(patientB.digits)]]
        }
        #expect(try await cluster.run(["resync"]).status == 0)
        let list = try parseJSON(try await cluster.run(["conflicts", "list", "--json"]).text)
        let conflict = try #require(list["conflicts"]?.arrayValue?.first)
        #expect(conflict["paths"]?.arrayValue?.first?["rule"] == "safety-wrong-patient", "\(conflict)")
        let id = try #require(conflict["id"]?.numberValue?.text)

        let theirs = try await cluster.run(["conflicts", "resolve", id, "--take", "theirs", "--reason", "r"])
        #expect(theirs.status == 2)
        #expect(theirs.errors.first?.contains("caresync never writes one over the other") == true, "\(theirs.errors)")
        let ours = try await cluster.run(["conflicts", "resolve", id, "--take", "ours", "--reason", "trust-a corrects the subject"])
        #expect(ours.status == 0, "\(ours.errors)")
        #expect(ours.output == ["conflict \(id) closed keeping the hub's record; nothing pushed; audited as \(ProcessInfo.processInfo.userName)"])
        let reader = try SQLiteStateStore.open(directory: cluster.stateDirectory, access: .reader)
        defer { reader.close() }
        #expect(try await reader.queue(peer: nil, limit: 10).depth == 0)
        #expect(try await cluster.carePlan(at: "hub", "cp-5")?["subject"]?["identifier"]?["value"] == .string(patientA.digits))
    }

    @Test("resync wakes the running daemon and --wait follows it; status reads while the daemon writes")
    func daemonResyncAndStatusWhileWriting() async throws {
        let cluster = try await LiveCluster()
        try await cluster.createCarePlan(at: "trust-a", "cp-3")
        try await cluster.startDaemon()
        try await eventually("the hub holds cp-3") { try await cluster.carePlan(at: "hub", "cp-3") != nil }

        // Records keep arriving while status runs: every run answers, healthy or not, never an error.
        let writing = Task {
            for index in 0..<20 { try await cluster.createCarePlan(at: "trust-b", "w-\(index)") }
        }
        for _ in 0..<8 {
            let status = try await cluster.run(["status", "--json"])
            #expect(status.errors.isEmpty, "\(status.errors)")
            #expect(status.status == 0 || status.status == 1)
            try await expectValid(status.text, schema: "status.schema.json")
        }
        try await writing.value

        let resync = try await cluster.run(["resync", "--full", "--peer", "trust-b", "--wait"])
        #expect(resync.status == 0, "\(resync.output) \(resync.errors)")
        #expect(resync.output.first?.hasSuffix("; daemon (pid \(cluster.daemon!.pid)) woken") == true, "\(resync.output)")
        #expect(resync.output.last?.contains("completed in ") == true, "\(resync.output)")
        try await eventually("the hub holds the 20 new records") {
            try await cluster.carePlan(at: "hub", "w-19") != nil
        }
        try await cluster.stopDaemon()
    }
}
