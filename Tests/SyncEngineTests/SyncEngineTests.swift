import CaresyncTestSupport
import FHIRClient
import FHIRJSON
import FHIRModel
import Foundation
import StateStore
import SyncEngine
import Testing

/// The sync engine end to end: real `caresync-store` processes on loopback, real HTTP, a real SQLite
/// state store.
@Suite("Sync engine against real stores")
struct SyncEngineTests {
    @Test("initial sync converges: every record once at the hub, shared patients fanned out, all copies equal")
    func initialSyncConverges() async throws {
        let cluster = try await Cluster()
        let patients = Records.patients(6)
        try await Records.seed(cluster, peer: "trust-a", patients: Array(patients[0..<3]), prefix: "A")
        // trust-b holds patients 3-5, and patient 0 too: shared care with trust-a.
        try await Records.seed(cluster, peer: "trust-b", patients: Array(patients[3..<6]) + [patients[0]], prefix: "B")
        // A record that exists only at the hub, for a patient trust-a holds.
        try await cluster.create("hub", Records.carePlan("icb", "CP-HUB-1", patient: patients[1]))
        // A record without a business identifier: caresync mints one from its origin.
        var unidentified = Records.encounter("trust-a", "x", patient: patients[2])
        unidentified["identifier"] = nil
        try await cluster.create("trust-a", unidentified)

        let report = try await cluster.sync()
        #expect(report.deadLettered == 0)

        let hub = try await cluster.recordsByIdentifier("hub")
        // 3 + 4 patients × 3 records, the hub's own plan, the minted encounter.
        let expectedAtHub = 21 + 1 + 1
        #expect(hub.count == expectedAtHub)
        #expect(hub.keys.contains { $0.hasPrefix("Encounter|urn:caresync:RA1:Encounter|") })
        let trustA = try await cluster.recordsByIdentifier("trust-a")
        let trustB = try await cluster.recordsByIdentifier("trust-b")
        // trust-a receives trust-b's records of patient 0 and the hub's plan of patient 1.
        let expectedAtA = 9 + 1 + 3 + 1
        #expect(trustA.count == expectedAtA)
        #expect(trustA.keys.contains("CarePlan|https://icb.example.nhs.uk/Id/care-plan|CP-HUB-1"))
        // trust-b receives trust-a's records of patient 0.
        let expectedAtB = 12 + 3
        #expect(trustB.count == expectedAtB)
        // The minted identifier went back to trust-a too.
        #expect(trustA.keys.contains { $0.hasPrefix("Encounter|urn:caresync:RA1:Encounter|") })
        try await cluster.expectConverged()

        // A second run finds nothing to do.
        let again = try await cluster.sync()
        #expect(again.pushed.isEmpty)
        #expect((again.decided[.merged] ?? 0) + (again.decided[.conflict] ?? 0) == 0)
    }

    /// trust-a with CP-LATE, stamped first but committed last (its searches do not show it until
    /// released), then CP-1; and trust-a's care plan identifier system.
    func lateCommitAtTrustA() async throws -> (Cluster, LateCommitPeer, String) {
        let cluster = try await Cluster(providers: [("trust-a", "RA1", .readWrite)])
        let patient = Records.patients(1)[0]
        let trustA = LateCommitPeer(try cluster.client("trust-a"))
        trustA.hide(try await cluster.create("trust-a", Records.carePlan("trust-a", "CP-LATE", patient: patient)))
        try await Task.sleep(for: .milliseconds(20))
        try await cluster.create("trust-a", Records.carePlan("trust-a", "CP-1", patient: patient))
        return (cluster, trustA, Records.carePlanSystem("trust-a"))
    }

    @Test("a version that becomes visible after a later-stamped one was pulled (a late commit) is still pulled: the cursor's skew margin")
    func lateCommitWithinTheMarginIsPulled() async throws {
        let (cluster, trustA, system) = try await lateCommitAtTrustA()
        var settings = Cluster.fastSettings
        // A late commit is caught when it lands within the margin of the cursor; the margin is wide so
        // that a slow first round (a loaded machine) does not carry the cursor past it.
        settings.clockSkewMargin = .seconds(600)

        for round in 1...2 {
            let (engine, store) = try await cluster.engine(settings: settings, clientOverrides: ["trust-a": trustA])
            let report = try await engine.syncUntilQuiescent()
            store.close()
            #expect(report.deadLettered == 0)
            #expect(try await cluster.record("hub", .carePlan, "\(system)|CP-1") != nil)
            #expect(
                try await cluster.record("hub", .carePlan, "\(system)|CP-LATE") != nil || round == 1,
                "the late commit, stamped before the newest version pulled, reached the hub")
            trustA.releaseAll()
        }
        try await cluster.expectConverged()
    }

    @Test("between sweeps a pull reads from the newest version seen; the next sweep of the margin window brings a late commit")
    func lateCommitArrivesWithTheNextSweep() async throws {
        let (cluster, trustA, system) = try await lateCommitAtTrustA()
        var settings = Cluster.fastSettings
        settings.clockSkewMargin = .seconds(600)
        settings.sweepInterval = .seconds(1)

        // One engine throughout: its first pull is a sweep, the ones right after it are not.
        let (engine, store) = try await cluster.engine(settings: settings, clientOverrides: ["trust-a": trustA])
        defer { store.close() }
        try await engine.syncUntilQuiescent()
        #expect(try await cluster.record("hub", .carePlan, "\(system)|CP-1") != nil)
        trustA.releaseAll()
        let deadline = ContinuousClock.now + .seconds(30)
        while try await cluster.record("hub", .carePlan, "\(system)|CP-LATE") == nil, ContinuousClock.now < deadline {
            try await engine.syncUntilQuiescent()
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(try await cluster.record("hub", .carePlan, "\(system)|CP-LATE") != nil, "the next sweep brought the late commit")
        try await cluster.expectConverged()
    }

    @Test("concurrent edits on both sides merge by the policy and reach every copy")
    func concurrentEditsMerge() async throws {
        let cluster = try await Cluster()
        let patients = Records.patients(2)
        let plans = try await Records.seed(cluster, peer: "trust-a", patients: patients, prefix: "A")
        try await cluster.sync()

        // The hub adds a note while trust-a rewrites the description and moves the activity forward.
        try await cluster.edit("hub", .carePlan, plans[0]) { plan in
            plan["note"] = .array((plan["note"]?.arrayValue ?? []) + [["text": "Reviewed at the ICB meeting."]])
        }
        try await cluster.edit("trust-a", .carePlan, plans[0]) { plan in
            plan["description"] = "Pulmonary rehabilitation twice weekly."
            var activities = plan["activity"]!.arrayValue!
            activities[0]["detail"]?["status"] = "completed"
            plan["activity"] = .array(activities)
        }
        let report = try await cluster.sync()
        #expect(report.decided[.merged, default: 0] >= 1)
        #expect(report.decided[.conflict] == nil)

        let hubPlan = try #require(try await cluster.record("hub", .carePlan, plans[0]))
        #expect(hubPlan["description"]?.stringValue == "Pulmonary rehabilitation twice weekly.")
        #expect(hubPlan["activity"]?.arrayValue?[0]["detail"]?["status"]?.stringValue == "completed")
        #expect(hubPlan["note"]?.arrayValue?.count == 2)
        try await cluster.expectConverged()

        // The decision is explained in the audit log with the rule that made it.
        let store = try SQLiteStateStore.open(directory: cluster.stateDirectory, access: .reader)
        defer { store.close() }
        let merges = try await store.audit(nhsNumber: patients[0], since: nil, limit: 1000).filter { $0.event.action == "merged" }
        #expect(merges.contains { $0.event.detail.contains("CarePlan.description ← theirs (default-three-way)") })
        #expect(merges.contains { $0.event.detail.contains("CarePlan.note ← ours (careplan-note)") })
    }

    @Test("a clinical conflict is stored for review and the hub's value is not overwritten, nor the provider's")
    func clinicalConflict() async throws {
        let cluster = try await Cluster()
        let patients = Records.patients(1)
        let plans = try await Records.seed(cluster, peer: "trust-a", patients: patients, prefix: "A")
        try await cluster.sync()

        try await cluster.edit("hub", .carePlan, plans[0]) { plan in
            plan["note"] = .array((plan["note"]?.arrayValue ?? []) + [["text": "Renal function checked."]])
        }
        try await cluster.edit("trust-a", .carePlan, plans[0]) { plan in
            var activities = plan["activity"]!.arrayValue!
            activities[0]["detail"]?["dailyAmount"]?["value"] = 120
            plan["activity"] = .array(activities)
            plan["title"] = "Respiratory and renal care plan"
        }
        let report = try await cluster.sync()
        #expect(report.decided[.conflict] == 1)

        let hubPlan = try #require(try await cluster.record("hub", .carePlan, plans[0]))
        let trustPlan = try #require(try await cluster.record("trust-a", .carePlan, plans[0]))
        func dose(_ plan: JSON) -> String? { plan["activity"]?.arrayValue?[0]["detail"]?["dailyAmount"]?["value"]?.numberValue?.text }
        #expect(dose(hubPlan) == "80", "the hub keeps its value at the conflicting path")
        #expect(dose(trustPlan) == "120", "the provider's value is never overwritten while the conflict is open")
        #expect(hubPlan["note"]?.arrayValue?.count == 2)
        #expect(hubPlan["title"]?.stringValue == "Respiratory and renal care plan", "the rest of the record still merges")

        let store = try SQLiteStateStore.open(directory: cluster.stateDirectory, access: .reader)
        defer { store.close() }
        let conflicts = try await store.conflicts(includeResolved: false, nhsNumber: patients[0])
        try #require(conflicts.count == 1)
        #expect(conflicts[0].conflict.peer == "trust-a")
        #expect(conflicts[0].conflict.paths.map(\.path) == ["CarePlan.activity[act-1].detail.dailyAmount"])
        #expect(conflicts[0].conflict.paths.map(\.rule) == ["careplan-activity-daily-amount"])

        // Another sync neither duplicates the conflict nor pushes over either side.
        try await cluster.edit("trust-a", .carePlan, plans[0]) { plan in plan["description"] = "Edited again." }
        try await cluster.sync()
        #expect(try await store.conflicts(includeResolved: false, nhsNumber: nil).count == 1)
        #expect(dose(try #require(try await cluster.record("hub", .carePlan, plans[0]))) == "80")
        #expect(dose(try #require(try await cluster.record("trust-a", .carePlan, plans[0]))) == "120")
        #expect(try await cluster.record("hub", .carePlan, plans[0])?["description"]?.stringValue == "Edited again.")
    }

    @Test("a provider that is down receives everything queued for it, in order, when it returns")
    func providerDownThenReturns() async throws {
        let cluster = try await Cluster()
        let patients = Records.patients(2)
        let plans = try await Records.seed(cluster, peer: "trust-a", patients: patients, prefix: "A")
        try await cluster.sync()

        try await cluster.store("trust-a").stop()
        // While trust-a is down: three successive hub edits of one plan (each synced, so each is queued
        // for trust-a), an edit of another, and a new record for one of its patients.
        let (engine, store) = try await cluster.engine()
        defer { store.close() }
        for round in 1...3 {
            try await cluster.edit("hub", .carePlan, plans[0]) { plan in plan["description"] = .string("Hub edit \(round)") }
            try await engine.syncUntilQuiescent(maxRounds: 2, maxWait: .milliseconds(300))
        }
        try await cluster.edit("hub", .carePlan, plans[1]) { plan in plan["title"] = "Changed at the hub" }
        try await cluster.create("hub", Records.carePlan("icb", "CP-NEW", patient: patients[1]))
        try await engine.syncUntilQuiescent(maxRounds: 2, maxWait: .milliseconds(300))
        let queued = try await store.queue(peer: "trust-a", limit: 100)
        #expect(queued.depth >= 3, "pushes wait in trust-a's queue")
        #expect(queued.items.contains { $0.attempts > 0 }, "and were tried while it was down")
        #expect(try await store.deadLetters(peer: nil).isEmpty)

        try await cluster.store("trust-a").restart()
        try await engine.syncUntilQuiescent()
        #expect(try await store.queue(peer: "trust-a", limit: 1).depth == 0)
        #expect(try await cluster.record("trust-a", .carePlan, plans[0])?["description"]?.stringValue == "Hub edit 3")
        #expect(try await cluster.record("trust-a", .carePlan, plans[1])?["title"]?.stringValue == "Changed at the hub")
        #expect(try await cluster.record("trust-a", .carePlan, Records.carePlanSystem("icb") + "|CP-NEW") != nil)
        // In order: trust-a's version history of the plan ends with the last hub edit, never an older one after it.
        let audit = try await store.audit(nhsNumber: patients[0], since: nil, limit: 10_000)
        let completed = audit.filter { $0.event.action == "push-completed" && $0.event.peer == "trust-a" }
        #expect(!completed.isEmpty)
        try await cluster.expectConverged()
    }

    @Test("a lost race (409, or 412 after If-Match) is read again, merged again and queued again", arguments: ["409", "412"])
    func lostRaceRemerges(status: String) async throws {
        let cluster = try await Cluster(hubArguments: ["--version-conflict-status", status])
        let patients = Records.patients(1)
        let plans = try await Records.seed(cluster, peer: "trust-a", patients: patients, prefix: "A")
        try await cluster.sync()

        let (engine, store) = try await cluster.engine()
        defer { store.close() }
        try await cluster.edit("trust-a", .carePlan, plans[0]) { plan in plan["description"] = "Changed at the trust." }
        await engine.pull(peerNamed: "trust-a")
        try await engine.mergePending()
        // The push is queued against the hub's current version; someone writes to the hub first.
        #expect(try await store.queue(peer: "hub", limit: 1).depth == 1)
        try await cluster.edit("hub", .carePlan, plans[0]) { plan in
            plan["note"] = .array((plan["note"]?.arrayValue ?? []) + [["text": "Added at the hub meanwhile."]])
        }
        let report = await engine.drain(peerNamed: "hub")
        #expect(report.remerged == 1)
        // The re-merged push went out with the new If-Match and landed.
        await engine.drain(peerNamed: "hub")
        let hubPlan = try #require(try await cluster.record("hub", .carePlan, plans[0]))
        #expect(hubPlan["description"]?.stringValue == "Changed at the trust.")
        #expect(hubPlan["note"]?.arrayValue?.count == 2, "the hub's concurrent change was kept, not overwritten")
        let audit = try await store.audit(nhsNumber: nil, since: nil, limit: 10_000)
        #expect(audit.contains { $0.event.action == "push-remerged" })
        try await engine.syncUntilQuiescent()
        try await cluster.expectConverged()
    }

    @Test("stores that fail 20% of requests still converge, and no record is created twice")
    func faultyStoresConverge() async throws {
        let cluster = try await Cluster()
        let patients = Records.patients(24)
        try await Records.seed(cluster, peer: "trust-a", patients: Array(patients[0..<12]), prefix: "A")
        try await Records.seed(cluster, peer: "trust-b", patients: Array(patients[12..<24]) + [patients[0]], prefix: "B")
        for (index, child) in ([cluster.hub] + cluster.providers).enumerated() {
            try await setFaults(port: child.port, rate: 0.2, seed: 11 + index)
        }
        let settings = EngineSettings(
            interval: .milliseconds(200), pageSize: 5, clockSkewMargin: .seconds(2), pushBatchSize: 4, mergeBatchSize: 20)
        let (engine, store) = try await cluster.engine(settings: settings)
        defer { store.close() }
        for _ in 0..<20 {
            try await engine.syncUntilQuiescent(maxRounds: 20)
            if try await store.queue(peer: nil, limit: 1).depth == 0 { break }
        }
        var injected = 0
        for child in [cluster.hub] + cluster.providers {
            injected += try await injectedFaults(port: child.port)
            try await setFaults(port: child.port, rate: 0, seed: 0)
        }
        #expect(injected >= 5, "faults were injected (\(injected))")
        try await engine.syncUntilQuiescent()
        #expect(try await store.deadLetters(peer: nil).isEmpty)
        let hub = try await cluster.recordsByIdentifier("hub")
        let expected = (12 + 13) * 3
        #expect(hub.count == expected)
        try await cluster.expectConverged()
    }

    @Test("a poisoned push is dead-lettered and bad input quarantined while the rest syncs")
    func poisonedRecordDeadLettered() async throws {
        // The provider stores hold what a real provider system might: no R4 checks on what they store.
        let cluster = try await Cluster(storeArguments: ["--validation", "minimal"])
        let patients = Records.patients(3)
        let plans = try await Records.seed(cluster, peer: "trust-a", patients: patients, prefix: "A")
        try await cluster.sync()

        // The hub deletes a plan while trust-a edits it: the update cannot land and must not recreate it.
        let hubPlan = try #require(try await cluster.record("hub", .carePlan, plans[0]))
        _ = try await cluster.http.send(
            .init(method: .delete, url: cluster.hub.baseURL + "/CarePlan/" + hubPlan["id"]!.stringValue!))
        try await cluster.edit("trust-a", .carePlan, plans[0]) { plan in plan["description"] = "Edited after the hub deleted it." }
        try await cluster.edit("trust-a", .carePlan, plans[1]) { plan in plan["description"] = "A good edit." }
        // Bad input: a plan whose NHS number fails the check digit.
        try await cluster.create("trust-a", Records.carePlan("trust-a", "CP-BAD", patientDigits: "9991000001"))
        try await cluster.create("trust-a", Records.carePlan("trust-a", "CP-GOOD", patient: patients[2]))

        try await cluster.sync()
        #expect(try await cluster.record("hub", .carePlan, plans[1])?["description"]?.stringValue == "A good edit.")
        #expect(try await cluster.record("hub", .carePlan, Records.carePlanSystem("trust-a") + "|CP-GOOD") != nil)
        #expect(try await cluster.record("hub", .carePlan, Records.carePlanSystem("trust-a") + "|CP-BAD") == nil)
        #expect(try await cluster.record("hub", .carePlan, plans[0]) == nil, "a deleted record is not silently recreated")

        let store = try SQLiteStateStore.open(directory: cluster.stateDirectory, access: .reader)
        defer { store.close() }
        let dead = try await store.deadLetters(peer: "hub")
        try #require(dead.count == 1)
        #expect(dead[0].reason.contains("missing at the peer"))
        let counts = try await store.inboxCounts(peer: "trust-a")
        #expect(counts.quarantined == 1)
        let audit = try await store.audit(nhsNumber: nil, since: nil, limit: 10_000)
        let quarantine = try #require(audit.first { $0.event.action == "inbox-quarantined" })
        #expect(quarantine.event.detail.contains("CarePlan.subject.identifier.value [nhs-number-check-digit]"))
        #expect(!quarantine.event.detail.contains("9991000001"), "the reason never quotes the NHS number")
        #expect(try await store.queue(peer: nil, limit: 1).depth == 0)
    }

    @Test("a hub that is not FHIR 4.0.1 is refused; the providers are still read")
    func hubNotR4IsRefused() async throws {
        let cluster = try await Cluster(providers: [("trust-a", "RA1", .readWrite)])
        try await Records.seed(cluster, peer: "trust-a", patients: Records.patients(1), prefix: "A")
        let server = try await FakeR5Server()
        defer { server.stop() }
        let r5 = try FHIRClient(endpoint: FHIREndpoint(name: "hub", baseURL: server.baseURL), http: cluster.http)
        let (engine, store) = try await cluster.engine(clientOverrides: ["hub": r5])
        defer { store.close() }
        let report = try await engine.syncUntilQuiescent(maxRounds: 3, maxWait: .milliseconds(200))
        #expect(report.refused == ["hub"])
        #expect(engine.refused["hub"]?.contains("5.0.0") == true)
        #expect(report.pulled["trust-a"] == 3)
        let statuses = try await store.status()
        #expect(statuses.first { $0.peer.name == "hub" }?.syncState == .refused)
        #expect(statuses.first { $0.peer.name == "trust-a" }?.syncState != .refused)
        let audit = try await store.audit(nhsNumber: nil, since: nil, limit: 100)
        #expect(audit.contains { $0.event.action == "peer-refused" && $0.event.peer == "hub" })
        #expect(server.requests.allSatisfy { $0.hasSuffix("/metadata") }, "nothing but metadata is asked of a refused peer")
    }
}

/// `POST /_admin/faults` on a store.
func setFaults(port: Int, rate: Double, seed: Int) async throws {
    let client = HTTPClientHolder.shared
    let body = #"{"rate":\#(rate),"faults":["429","503","reset","drop-after-commit"],"seed":\#(seed),"retryAfter":0}"#
    let response = try await client.send(
        .init(method: .post, url: "http://127.0.0.1:\(port)/_admin/faults", headers: ["Content-Type": "application/json"], body: Array(body.utf8)))
    #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
}

/// How many faults a store injected since its settings were last set.
func injectedFaults(port: Int) async throws -> Int {
    let response = try await HTTPClientHolder.shared.send(.init(url: "http://127.0.0.1:\(port)/_admin/faults"))
    let settings = try JSON.parse(response.body)
    guard case .object(let counts)? = settings["injected"] else { return 0 }
    return counts.members.reduce(0) { $0 + ($1.value.numberValue?.intValue ?? 0) }
}

import CaresyncHTTP

enum HTTPClientHolder {
    static let shared = HTTPClient()
}
