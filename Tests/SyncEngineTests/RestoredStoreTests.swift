import CaresyncHTTP
import CaresyncTestSupport
import FHIRJSON
import FHIRModel
import Foundation
import StateStore
import SyncEngine
import Testing

/// A provider's store restored in place from an older backup (docs/sync-engine.md, "A peer that went
/// backwards"): real `caresync-store` children on loopback, the backup a copy of the store's SQLite file,
/// a real SQLite state store.
@Suite("Restored provider store")
struct RestoredStoreTests {
    @Test("a store restored from an older backup is reported within one cycle; the hub keeps the newer versions")
    func restoredStoreReportedInOneCycle() async throws {
        let cluster = try await Cluster(providers: [("trust-a", "RA1", .readWrite)])
        let patients = Records.patients(2)
        let plans = try await Records.seed(cluster, peer: "trust-a", patients: patients, prefix: "A")
        let (engine, store) = try await cluster.engine()
        defer { store.close() }
        try await engine.syncUntilQuiescent()

        // The backup: the provider's store stopped, its database copied, started again.
        let provider = cluster.store("trust-a")
        let backup = cluster.directory.path("backup").path
        try FileManager.default.createDirectory(atPath: backup, withIntermediateDirectories: true)
        try await provider.stop()
        try Self.copyDatabase(provider.databasePath, toDirectory: backup)
        try await provider.restart()

        // After the backup: an edit in two versions and a new record, synced to the hub.
        try await cluster.edit("trust-a", .carePlan, plans[0]) { $0["description"] = "Edited after the backup." }
        try await cluster.edit("trust-a", .carePlan, plans[0]) { $0["title"] = "Reviewed after the backup" }
        let createdToken = Records.carePlanSystem("trust-a") + "|A-AFTER-BACKUP"
        try await cluster.create("trust-a", Records.carePlan("trust-a", "A-AFTER-BACKUP", patient: patients[1]))
        try await engine.syncUntilQuiescent()
        #expect(try await cluster.record("hub", .carePlan, plans[0])?["description"]?.stringValue == "Edited after the backup.")
        #expect(try await cluster.record("hub", .carePlan, createdToken) != nil)
        let auditBefore = try await store.audit(nhsNumber: nil, since: nil, limit: 100_000).last?.sequence ?? 0
        #expect(try await store.cursor(peer: "trust-a", resourceType: .carePlan)?.newest != nil, "the newest version pulled is kept")

        // The restore: stopped, the backup copied back over its database, started on the same port.
        try await provider.stop()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: provider.databasePath + suffix) }
        try Self.copyDatabase(
            backup + "/" + (provider.databasePath as NSString).lastPathComponent,
            toDirectory: (provider.databasePath as NSString).deletingLastPathComponent)
        try await provider.restart()
        #expect(try await cluster.record("trust-a", .carePlan, createdToken) == nil, "the restored store lost the new record")

        // One cycle: one pull of the restored peer reports it.
        await engine.pull(peerNamed: "trust-a")
        let audit = try await store.audit(nhsNumber: nil, since: nil, limit: 100_000).filter { $0.sequence > auditBefore }
        let reported = audit.filter { $0.event.action == "peer-store-regressed" && $0.event.peer == "trust-a" }
        try #require(reported.count == 1, "the restore is audited once: \(audit.map(\.event.action))")
        #expect(reported[0].event.detail.contains("restored from an older backup"))
        #expect(!reported[0].event.detail.contains(patients[1].digits), "no NHS number in the report")
        let status = try #require(try await store.status().first { $0.peer.name == "trust-a" })
        #expect(status.lastError?.hasPrefix("peer-store-regressed") == true, "caresync status shows it: \(status.lastError ?? "-")")
        #expect(status.syncStateDetail?.contains("restored") == true)

        // Re-reconciled rather than trusted: the older version is merged without a base, held for review.
        try await engine.syncUntilQuiescent()
        let afterwards = try await store.audit(nhsNumber: nil, since: nil, limit: 100_000).filter { $0.sequence > auditBefore }
        #expect(afterwards.contains { $0.event.action == "peer-version-regressed" && $0.event.peer == "trust-a" })
        #expect(afterwards.filter { $0.event.action == "peer-store-regressed" }.count == 1, "reported once, not every cycle")
        let hubPlan = try #require(try await cluster.record("hub", .carePlan, plans[0]))
        #expect(hubPlan["description"]?.stringValue == "Edited after the backup.", "the hub keeps the newer version")
        #expect(hubPlan["title"]?.stringValue == "Reviewed after the backup")
        #expect(try await cluster.record("hub", .carePlan, createdToken) != nil, "the hub keeps the record the restore lost")
        let conflicts = try await store.conflicts(includeResolved: false, nhsNumber: patients[0])
        #expect(conflicts.contains { $0.conflict.peer == "trust-a" }, "the older content is held for review")
        for peer in ["hub", "trust-a"] {
            for (key, copies) in try await cluster.recordsByIdentifier(peer) {
                #expect(copies.count == 1, "\(peer) holds \(copies.count) copies of \(key)")
            }
        }
        #expect(try await cluster.recordsByIdentifier("hub").count == 7)

        // A no-op cycle still costs one request per peer and type.
        try await engine.syncUntilQuiescent()
        let before = try await Self.requestCounts(cluster)
        let report = try await engine.syncUntilQuiescent(maxRounds: 1)
        let after = try await Self.requestCounts(cluster)
        #expect(report.pulled.values.allSatisfy { $0 == 0 })
        for (peer, count) in after {
            #expect(count - before[peer]! == ResourceType.synchronised.count, "\(peer): \(count - before[peer]!) requests in a no-op cycle")
        }
        let lastAudit = try await store.audit(nhsNumber: nil, since: nil, limit: 100_000).filter { $0.event.action == "peer-store-regressed" }
        #expect(lastAudit.count == 1)
    }

    @Test("the newest version pulled deleted at the peer (410) is not a restore, and the no-op cycle stays one request")
    func deletedNewestIsNotARestore() async throws {
        let cluster = try await Cluster(providers: [("trust-a", "RA1", .readOnly)])
        let patients = Records.patients(1)
        try await Records.seed(cluster, peer: "trust-a", patients: patients, prefix: "A")
        let (engine, store) = try await cluster.engine()
        defer { store.close() }
        try await engine.syncUntilQuiescent()
        let newest = try #require(try await store.cursor(peer: "trust-a", resourceType: .carePlan)?.newest)
        let deleted = try await cluster.http.send(.init(method: .delete, url: cluster.store("trust-a").baseURL + "/CarePlan/" + newest.localID))
        #expect(deleted.status == 200 || deleted.status == 204)

        try await engine.syncUntilQuiescent()
        let audit = try await store.audit(nhsNumber: nil, since: nil, limit: 100_000)
        #expect(!audit.contains { $0.event.action == "peer-store-regressed" })
        let before = try await Self.requestCounts(cluster)
        try await engine.syncUntilQuiescent(maxRounds: 1)
        let after = try await Self.requestCounts(cluster)
        #expect(after["trust-a"]! - before["trust-a"]! == ResourceType.synchronised.count)
    }

    /// FHIR requests each store has answered (its fault injector's count of eligible requests).
    static func requestCounts(_ cluster: Cluster) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for child in [cluster.hub] + cluster.providers {
            let response = try await HTTPClientHolder.shared.send(.init(url: "http://127.0.0.1:\(child.port)/_admin/faults"))
            counts[child.name] = try JSON.parse(response.body)["eligibleRequests"]?.numberValue?.intValue ?? -1
        }
        return counts
    }

    /// Copies a store's SQLite database (with its WAL and shared-memory files) into `directory`.
    static func copyDatabase(_ path: String, toDirectory directory: String) throws {
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            let target = directory + "/" + (path as NSString).lastPathComponent + suffix
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: path + suffix, toPath: target)
        }
    }
}
