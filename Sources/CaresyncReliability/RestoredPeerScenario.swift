import FHIRJSON
import FHIRModel
import Foundation
import StateStore

/// `restored-peer`: a provider's store is restored from an older backup while caresync runs.
///
/// The cluster syncs; the provider's store is stopped and its SQLite file copied (the backup) and it is
/// started again; records are then edited and created at the provider and synced to the hub; then the
/// provider's store is stopped, the backup copied back over its file, and it is started again on the same
/// port. caresync must detect and report the regression within one sync cycle (an audit entry
/// `peer-store-regressed`, `peer-version-regressed` or `peer-record-missing` for the peer, or the peer's
/// state detail saying so), and lose nothing: the hub keeps the newer versions and the records created
/// after the backup, nothing is duplicated, and nothing older is pushed over the hub's newer content.
struct RestoredPeerScenario {
    let scale: ReliabilityScale
    let environment: ReliabilityEnvironment

    var trials: Int { scale == .full ? 3 : 1 }
    static let interval = 1.0
    static let regressionActions: Set<String> = ["peer-store-regressed", "peer-version-regressed", "peer-record-missing"]

    func run() async throws -> ScenarioResult {
        var result = ScenarioResult(scenario: ReliabilityScenario.restoredPeer.rawValue, trials: trials)
        var delays: [String] = []
        for trial in 1...trials {
            let cluster = try Cluster(environment: environment, label: "restore-\(trial)")
            var passed = false
            do {
                let outcome = try await runTrial(trial, cluster: cluster, result: &result)
                delays.append(outcome)
                passed = result.problems.isEmpty && result.lost == 0 && result.duplicated == 0
            } catch {
                result.problem("trial \(trial): \(error)")
            }
            await cluster.shutdown()
            if passed && !environment.keepFiles { cluster.removeFiles() } else { result.notes.append("files of trial \(trial): \(cluster.directory)") }
        }
        result.notes.insert("detection after the restored store came back: " + delays.joined(separator: ", "), at: 0)
        return result
    }

    /// One backup, changes, restore; returns how long detection took (or "not detected").
    private func runTrial(_ trial: Int, cluster: Cluster, result: inout ScenarioResult) async throws -> String {
        try await cluster.startStores()
        var plan = SeedPlan(records: 60, providers: cluster.providers.map(\.name), conflicts: 0, prefix: "B\(trial)")
        try await cluster.seed(plan)
        try cluster.writeConfiguration(interval: "\(Int(Self.interval * 1000))ms", pageSize: 100)
        try cluster.daemon.start()
        guard try await cluster.waitUntilSettled(plan, timeout: .seconds(240)) else {
            throw ReliabilityError("the first sync did not converge; daemon log: \(cluster.daemon.logTail(5))")
        }
        let provider = cluster.providers[0]
        let access = cluster.access(provider)

        // The backup: stop, copy the files, start again.
        let backup = cluster.directory + "/backup"
        try FileManager.default.createDirectory(atPath: backup, withIntermediateDirectories: true)
        await provider.stop()
        try Self.copyDatabase(from: provider.databasePath, toDirectory: backup)
        try await provider.start()

        // Changes after the backup: edits (versions move on) and new records, synced to the hub.
        let own = (plan.byProvider[provider.name] ?? []).filter { $0.key.hasPrefix("CarePlan|") }.prefix(5)
        var edited: [(token: String, text: String)] = []
        for (index, record) in own.enumerated() {
            let token = String(record.key.dropFirst("CarePlan|".count))
            let text = "Edited after the backup (\(trial)-\(index))."
            try await access.edit(.carePlan, identifier: token) { $0["description"] = .string(text) }
            try await access.edit(.carePlan, identifier: token) { $0["title"] = .string("Respiratory care plan, reviewed") }
            edited.append((token, text))
        }
        let patient = SyntheticRecords.patients(1, offset: 50_000 + trial)[0].digits
        var created: [String] = []
        for index in 0..<3 {
            let system = SyntheticRecords.system(provider.name, .carePlan)
            let value = "B\(trial)-AFTER-\(index)"
            _ = try await access.create(SyntheticRecords.carePlan(system: system, value: value, patient: patient))
            created.append("\(system)|\(value)")
        }
        plan.addExtra(created.map { "CarePlan|" + $0 }, at: provider.name)
        guard try await cluster.waitUntilSettled(plan, timeout: .seconds(240)) else {
            throw ReliabilityError("the changes after the backup did not converge; daemon log: \(cluster.daemon.logTail(5))")
        }
        let hubAccess = cluster.access(cluster.hub)
        for change in edited {
            let description = try await hubAccess.record(.carePlan, identifier: change.token)?["description"]?.stringValue
            guard description == change.text else { throw ReliabilityError("the hub did not get the edit of \(change.token)") }
        }
        let auditBefore = try await cluster.audit().entries.last?.sequence ?? 0

        // The restore: stop, copy the backup back, start on the same port.
        await provider.stop()
        try Self.removeDatabase(provider.databasePath)
        try Self.copyDatabase(from: backup + "/" + (provider.databasePath as NSString).lastPathComponent, toDirectory: (provider.databasePath as NSString).deletingLastPathComponent)
        try await provider.start()
        let restarted = ContinuousClock.now
        environment.log("restored-peer: trial \(trial): \(provider.name) restored from its backup (\(edited.count) edits and \(created.count) creates undone)")

        // Detection within one cycle: the next pull of the peer after it is back.
        let deadline = restarted.advanced(by: .seconds(Self.interval * 2 + 3))
        var detection: String?
        var detectedAfter: Duration?
        while detection == nil, ContinuousClock.now < deadline {
            detection = try await reported(cluster, peer: provider.name, after: auditBefore)
            if detection != nil { detectedAfter = ContinuousClock.now - restarted } else { try await Task.sleep(for: .milliseconds(100)) }
        }
        let delay = detectedAfter.map { String(format: "%.1f s", Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18) }
        if let detection {
            environment.log("restored-peer: trial \(trial): reported after \(delay ?? "?"): \(detection)")
        } else {
            result.errorsAsDocumented = false
            result.problem(
                "trial \(trial): the restore of \(provider.name) was not reported within one cycle (\(Int(Self.interval)) s interval): no peer-store-regressed / peer-version-regressed / peer-record-missing audit entry, no state detail")
        }

        // Nothing lost: give the daemon a few cycles with the restored peer, then check the hub.
        try await Task.sleep(for: .seconds(Self.interval * 4))
        for change in edited {
            let description = try await hubAccess.record(.carePlan, identifier: change.token)?["description"]?.stringValue
            if description != change.text {
                result.lost += 1
                result.problem("trial \(trial): the hub lost the edit of \(change.token) made before the restore (now \(description ?? "absent"))")
            }
        }
        for (name, counts) in [("hub", try await hubAccess.copiesByKey()), (provider.name, try await access.copiesByKey())] {
            for (key, count) in counts where count > 1 {
                result.duplicated += count - 1
                result.problem("trial \(trial): \(name) holds \(count) copies of \(key)")
            }
        }
        let hubKeys = Set(try await hubAccess.copiesByKey().keys)
        for key in plan.hubKeys where !hubKeys.contains(key) {
            result.lost += 1
            result.problem("trial \(trial): the hub lacks \(key) after the restore")
        }
        let status = await cluster.daemon.stop()
        if status != 0 { result.problem("trial \(trial): the daemon exited with \(status.map(String.init) ?? "?") on SIGTERM") }
        return delay ?? "not detected"
    }

    /// How the regression was reported, if it was: an audit entry for the peer after `sequence`, or the
    /// peer's state detail.
    private func reported(_ cluster: Cluster, peer: String, after sequence: Int64) async throws -> String? {
        let entries = try await cluster.audit().entries
        if let entry = entries.first(where: { $0.sequence > sequence && $0.event.peer == peer && Self.regressionActions.contains($0.event.action) }) {
            return "audit \(entry.event.action): \(entry.event.detail)"
        }
        let state = try await cluster.state()
        if let detail = state.status(peer)?.syncStateDetail, detail.contains("restored") || detail.contains("backwards") {
            return "peer state: \(detail)"
        }
        return nil
    }

    static func copyDatabase(from path: String, toDirectory directory: String) throws {
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            let target = directory + "/" + (path as NSString).lastPathComponent + suffix
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: path + suffix, toPath: target)
        }
    }

    static func removeDatabase(_ path: String) throws {
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.removeItem(atPath: path + suffix)
        }
    }
}
