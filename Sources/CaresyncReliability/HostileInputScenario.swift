import FHIRJSON
import FHIRModel
import Foundation
import StateStore

/// `hostile-input`: the corpus of ``HostileCorpus`` arrives from several peers at once, among good
/// records: record-level cases from a provider store started with `--validation minimal` and from the
/// hostile peer's `records` path, broken answers from hostile peers of their own. Each case must get its
/// documented error (a quarantine whose reason names the validator code, the peer's state naming the
/// FHIR client's error code, a push kept for retry with that code, or the audit entry), while every good
/// record reaches the hub exactly once, records created afterwards still do, nothing is dead-lettered,
/// and no bad record reaches the hub.
struct HostileInputScenario {
    let scale: ReliabilityScale
    let environment: ReliabilityEnvironment

    var goodRecords: Int { scale == .full ? 1_500 : 30 }

    func run() async throws -> ScenarioResult {
        let cases = HostileCorpus.all
        var result = ScenarioResult(scenario: ReliabilityScenario.hostileInput.rawValue, trials: cases.count)
        let cluster = try Cluster(
            environment: environment, label: "hostile", providers: ["trust-a", "trust-h"], arguments: ["trust-h": ["--validation", "minimal"]])
        var hostile: Child?
        var passed = false
        do {
            try await cluster.startStores()
            hostile = try await startHostilePeer(cluster)
            passed = try await exercise(cases, cluster: cluster, hostile: hostile!, result: &result)
        } catch {
            result.problem("\(error)")
        }
        if let hostile {
            hostile.send(SIGTERM)
            await hostile.waitForExit(timeout: .seconds(10))
        }
        await cluster.shutdown()
        if passed && !environment.keepFiles { cluster.removeFiles() } else { result.notes.append("files: \(cluster.directory)") }
        return result
    }

    /// Paths of the hostile peer: `records`, then one per page or push case.
    private func hostilePaths() -> [(path: String, mode: String, caseName: String?)] {
        var paths: [(String, String, String?)] = [("records", "records", nil)]
        for (index, hostileCase) in HostileCorpus.pageCases.enumerated() {
            switch hostileCase.delivery {
            case .page(let mode), .push(let mode): paths.append(("p\(index)", mode, hostileCase.name))
            default: break
            }
        }
        return paths
    }

    private func startHostilePeer(_ cluster: Cluster) async throws -> Child {
        let script = cluster.directory + "/hostile_peer.py"
        try Data(PackageResources.hostile_peer_py).write(to: URL(fileURLWithPath: script))
        var served: [JSON] = HostileCorpus.servedGood.map { ["b64": .string(Data($0.utf8).base64EncodedString())] }
        for hostileCase in HostileCorpus.servedCases {
            guard case .served(let bytes, _, let requests) = hostileCase.delivery else { continue }
            var record: JSON = ["b64": .string(Data(bytes).base64EncodedString())]
            if let requests {
                record["min_request"] = .number(JSONNumber(requests.lowerBound))
                record["max_request"] = .number(JSONNumber(requests.upperBound))
            }
            served.append(record)
        }
        served.append(["b64": .string(Data(HostileCorpus.regressedVersion).base64EncodedString()), "min_request": 4])
        var paths = JSONObject()
        for (index, entry) in hostilePaths().enumerated() {
            var peer: JSON = ["mode": .string(entry.mode)]
            if entry.path == "records" {
                peer["records"] = ["CarePlan": .array(served)]
            } else if entry.mode == "foreign-next" {
                peer["records"] = ["CarePlan": [["b64": .string(Data(HostileCorpus.foreignNextGood.utf8).base64EncodedString())]]]
            } else if entry.mode == "no-server-time" {
                peer["records"] = ["CarePlan": [["b64": .string(Data(HostileCorpus.undatedPlan.utf8).base64EncodedString())]]]
            } else if entry.mode.hasPrefix("push-") {
                let bytes = HostileCorpus.pushPeerRecord(id: "w\(index)", patientOffset: 74_000 + index)
                peer["records"] = ["CarePlan": [["b64": .string(Data(bytes).base64EncodedString())]]]
            }
            paths[entry.path] = peer
        }
        let configuration = cluster.directory + "/hostile_peer.json"
        let document: JSON = ["paths": .object(paths)]
        try Data(document.serialized()).write(to: URL(fileURLWithPath: configuration))
        let child = try Child(
            executable: URL(fileURLWithPath: "/usr/bin/env"), arguments: [environment.python, script, configuration],
            logPath: cluster.directory + "/hostile_peer.log")
        _ = try await child.waitForLine { $0.hasPrefix("listening on") }
        return child
    }

    private func exercise(_ cases: [HostileCase], cluster: Cluster, hostile: Child, result: inout ScenarioResult) async throws -> Bool {
        let hostilePort = hostile.output.first { $0.hasPrefix("listening on") }.flatMap { Int($0.split(separator: ":").last ?? "") } ?? 0
        var expectedHub = Set<String>()
        // Good records: a normal provider, the minimal-validation provider, the hostile peer's pages.
        let plan = SeedPlan(records: goodRecords, providers: ["trust-a"], conflicts: 0, prefix: "G")
        try await cluster.access("trust-a").seed((plan.byProvider["trust-a"] ?? []).map(\.resource))
        expectedHub.formUnion(plan.hubKeys)
        let trustH = cluster.access("trust-h")
        for index in 0..<5 {
            let patient = SyntheticRecords.patients(1, offset: 75_000 + index)[0].digits
            let system = SyntheticRecords.system("trust-h", .carePlan)
            _ = try await trustH.create(SyntheticRecords.carePlan(system: system, value: "GOOD-H-\(index)", patient: patient))
            expectedHub.insert("CarePlan|\(system)|GOOD-H-\(index)")
        }
        for index in 1...3 { expectedHub.insert("CarePlan|https://served.example.nhs.uk/Id/care-plan|S-GOOD-\(index)") }
        expectedHub.insert("CarePlan|https://served.example.nhs.uk/Id/care-plan|S-11")

        // The store cases: created at trust-h, their ids noted.
        var storeIDs: [String: String] = [:]
        for hostileCase in cases {
            guard case .store(let resource) = hostileCase.delivery else { continue }
            storeIDs[hostileCase.name] = try await trustH.create(resource)
        }

        // The daemon over all of them.
        var extra: [PeerSpec] = []
        var peerOfCase: [String: String] = [:]
        for (index, entry) in hostilePaths().enumerated() {
            let name = "hostile-\(entry.path)"
            extra.append(
                PeerSpec(
                    name: name, ods: "RH\(index)", baseURL: "http://127.0.0.1:\(hostilePort)/\(entry.path)/fhir",
                    mode: entry.mode.hasPrefix("push-") ? "read-write" : "read-only"))
            if let caseName = entry.caseName { peerOfCase[caseName] = name }
            if entry.mode.hasPrefix("push-") {
                expectedHub.insert(GlobalKey.minted(resourceType: .carePlan, originODS: "RH\(index)", localID: "w\(index)").description)
            }
        }
        try cluster.writeConfiguration(interval: "1s", pageSize: 100, extra: extra)
        try cluster.daemon.start()
        environment.log("hostile-input: \(cases.count) hostile inputs from \(extra.count + 1) peers among \(expectedHub.count) good records")

        // Wait until every case shows its documented error and the good records are at the hub.
        let deadline = ContinuousClock.now.advanced(by: .seconds(scale == .full ? 600 : 300))
        var outcomes: [String: String] = [:]
        var hubReady = false
        while ContinuousClock.now < deadline {
            guard FileManager.default.fileExists(atPath: cluster.stateDirectory + "/" + SQLiteStateStore.databaseFileName) else {
                try await Task.sleep(for: .milliseconds(200))
                continue
            }
            outcomes = try await check(cases, cluster: cluster, storeIDs: storeIDs, peerOfCase: peerOfCase)
            let copies = try await cluster.access(cluster.hub).copiesByKey()
            hubReady = expectedHub.allSatisfy { copies[$0] != nil }
            if hubReady, outcomes.values.allSatisfy({ $0 == "as documented" }) { break }
            try await Task.sleep(for: .seconds(1))
        }
        for hostileCase in cases where outcomes[hostileCase.name] != "as documented" {
            result.errorsAsDocumented = false
            result.problem("\(hostileCase.name): \(outcomes[hostileCase.name] ?? "not checked")")
        }

        // The rest keeps syncing: records created now still reach the hub.
        for (peer, value) in [("trust-a", "LATE-A"), ("trust-h", "LATE-H")] {
            let patient = SyntheticRecords.patients(1, offset: 76_000 + value.count + (peer == "trust-a" ? 0 : 1))[0].digits
            let system = SyntheticRecords.system(peer, .carePlan)
            _ = try await cluster.access(peer).create(SyntheticRecords.carePlan(system: system, value: value, patient: patient))
            expectedHub.insert("CarePlan|\(system)|\(value)")
        }
        let lateDeadline = ContinuousClock.now.advanced(by: .seconds(120))
        var copies: [String: Int] = [:]
        while ContinuousClock.now < lateDeadline {
            copies = try await cluster.access(cluster.hub).copiesByKey()
            if expectedHub.allSatisfy({ copies[$0] != nil }) { break }
            try await Task.sleep(for: .milliseconds(500))
        }

        // Nothing lost, nothing twice, nothing bad at the hub, nothing dead-lettered.
        for key in expectedHub where copies[key] == nil {
            result.lost += 1
            result.problem("the hub lacks the good record \(key)")
        }
        for (key, count) in copies {
            if count > 1 {
                result.duplicated += count - 1
                result.problem("the hub holds \(count) copies of \(key)")
            }
            if !expectedHub.contains(key) { result.problem("the hub holds \(key), which is not a good record") }
        }
        let state = try await cluster.state()
        let quarantineCases = cases.filter { if case .quarantined = $0.expected { true } else { false } }.count
        if state.quarantined != quarantineCases {
            result.problem("\(state.quarantined) pulled versions quarantined, expected exactly \(quarantineCases)")
        }
        if !state.deadLetters.isEmpty {
            result.problem("\(state.deadLetters.count) dead letters: \(state.deadLetters.prefix(3).map { "\($0.push.peer): \($0.reason)" })")
        }
        if !cluster.daemon.isRunning { result.problem("the daemon stopped: \(cluster.daemon.logTail(5))") }
        let status = await cluster.daemon.stop()
        if status != 0 { result.problem("the daemon exited with \(status.map(String.init) ?? "?") on SIGTERM") }
        let documented = outcomes.values.filter { $0 == "as documented" }.count
        result.notes.insert(
            "\(cases.count) hostile inputs (\(quarantineCases) to quarantine with a validator code, \(cases.count - quarantineCases) reported by peer state, retry queue or audit), \(documented) with their documented error; \(expectedHub.count) good records",
            at: 0)
        environment.log("hostile-input: \(documented) of \(cases.count) as documented; good records at the hub: \(expectedHub.count - result.lost) of \(expectedHub.count)")
        return result.passed
    }

    /// Each case's outcome: "as documented", or what was seen instead.
    private func check(_ cases: [HostileCase], cluster: Cluster, storeIDs: [String: String], peerOfCase: [String: String]) async throws
        -> [String: String]
    {
        let audit = try await cluster.audit().entries
        let state = try await cluster.state()
        var outcomes: [String: String] = [:]
        for hostileCase in cases {
            switch (hostileCase.delivery, hostileCase.expected) {
            case (.store(let resource), .quarantined(let code)):
                let type = resource["resourceType"]?.stringValue ?? "CarePlan"
                outcomes[hostileCase.name] = quarantineOutcome(
                    audit, peer: "trust-h", prefix: "\(type)/\(storeIDs[hostileCase.name] ?? "?")/_history/", code: code)
            case (.served(_, let id, _), .quarantined(let code)):
                outcomes[hostileCase.name] = quarantineOutcome(audit, peer: "hostile-records", prefix: "CarePlan/\(id)/_history/", code: code)
            case (.served, .audited(let action)):
                outcomes[hostileCase.name] =
                    audit.contains { $0.event.action == action && $0.event.peer == "hostile-records" } ? "as documented" : "no \(action) audit entry yet"
            case (_, .audited(let action)):
                let peer = peerOfCase[hostileCase.name] ?? "?"
                outcomes[hostileCase.name] =
                    audit.contains { $0.event.action == action && $0.event.peer == peer } ? "as documented" : "no \(action) audit entry for \(peer) yet"
            case (_, .peerError(let code)):
                let peer = peerOfCase[hostileCase.name] ?? "?"
                let status = state.status(peer)
                let seen = [status?.lastError, status?.syncStateDetail].compactMap { $0 }
                outcomes[hostileCase.name] =
                    seen.contains { $0.hasPrefix(code + ":") } ? "as documented" : "peer \(peer) shows \(seen.isEmpty ? "no error" : seen.joined(separator: " / ")), expected \(code)"
            case (_, .pushRetried(let code)):
                let peer = peerOfCase[hostileCase.name] ?? "?"
                let items = try await cluster.queue(peer: peer)
                let errors = items.compactMap(\.lastError)
                outcomes[hostileCase.name] =
                    errors.contains { $0.hasPrefix(code + ":") }
                    ? "as documented" : "\(items.count) queued for \(peer), last errors \(errors.isEmpty ? "none" : errors.joined(separator: " / ")), expected \(code)"
            default:
                outcomes[hostileCase.name] = "the harness has no check for this case"
            }
        }
        return outcomes
    }

    private func quarantineOutcome(_ audit: [AuditEntry], peer: String, prefix: String, code: String) -> String {
        let matching = audit.filter { $0.event.action == "inbox-quarantined" && $0.event.peer == peer && $0.event.detail.hasPrefix(prefix) }
        guard let entry = matching.first else { return "not quarantined (yet)" }
        if matching.count > 1 { return "quarantined \(matching.count) times" }
        let detail = entry.event.detail
        return detail.contains("[\(code)]") ? "as documented" : "quarantined with another reason: \(detail.prefix(300))"
    }
}
