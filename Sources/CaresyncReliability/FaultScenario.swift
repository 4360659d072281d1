import Foundation

/// `faults`: the hub and both providers inject faults into 20% of their FHIR requests, of every kind
/// caresync-store has (`429` and `503` with `Retry-After`, `reset`, `drop-after-commit`, `slow`), while
/// the daemon runs an initial sync with fan-out and planted conflicts. The system must converge with
/// nothing lost and nothing created twice (a dropped answer to a committed create must not create the
/// record again), every planted conflict recorded once, and every kind of fault must actually have been
/// injected.
struct FaultScenario {
    let scale: ReliabilityScale
    let environment: ReliabilityEnvironment

    static let kinds = ["429", "503", "reset", "drop-after-commit", "slow"]
    var trials: Int { scale == .full ? 3 : 1 }
    var records: Int { scale == .full ? 1_500 : 240 }

    func run() async throws -> ScenarioResult {
        var result = ScenarioResult(scenario: ReliabilityScenario.faults.rawValue, trials: trials)
        var injectedTotal: [String: Int] = [:]
        for trial in 1...trials {
            let cluster = try Cluster(environment: environment, label: "faults-\(trial)")
            var passed = false
            do {
                try await cluster.startStores()
                let plan = SeedPlan(records: records, providers: cluster.providers.map(\.name), conflicts: 2, prefix: "F\(trial)")
                try await cluster.seed(plan)
                // Small pages in the short form: enough requests that each of the five kinds is drawn (about 10
                // faults over 50 requests at page size 50 missed a kind one run in six).
                try cluster.writeConfiguration(interval: "500ms", pageSize: scale == .full ? 50 : 10)
                for (index, store) in cluster.stores.enumerated() {
                    try await cluster.access(store).setFaults(
                        rate: 0.2, faults: Self.kinds, seed: Int(truncatingIfNeeded: environment.seed % 100_000) + 31 * trial + index,
                        retryAfter: 1, slowDelayMs: 300)
                }
                environment.log("faults: trial \(trial): \(plan.recordCount) records, 20% faults at every store")
                try cluster.daemon.start()
                let settled = try await cluster.waitUntilSettled(plan, timeout: .seconds(scale == .full ? 900 : 420))
                var injected: [String: Int] = [:]
                for store in cluster.stores {
                    for (kind, count) in try await cluster.access(store).injectedFaults() { injected[kind, default: 0] += count }
                    try await cluster.access(store).setFaults(rate: 0, faults: [], seed: 0)
                }
                for (kind, count) in injected { injectedTotal[kind, default: 0] += count }
                if !settled { result.problem("trial \(trial): did not converge; daemon log: \(cluster.daemon.logTail(5))") }
                let ledger = try await cluster.ledger(plan)
                result.add(ledger, trial: "trial \(trial)")
                let status = await cluster.daemon.stop()
                if status != 0 { result.problem("trial \(trial): the daemon exited with \(status.map(String.init) ?? "?") on SIGTERM") }
                environment.log(
                    "faults: trial \(trial): converged: \(settled), injected \(injected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")), lost \(ledger.lost), duplicated \(ledger.duplicated)")
                passed = settled && ledger.isClean && status == 0
            } catch {
                result.problem("trial \(trial): \(error)")
            }
            await cluster.shutdown()
            if passed && !environment.keepFiles { cluster.removeFiles() } else { result.notes.append("files of trial \(trial): \(cluster.directory)") }
        }
        for kind in Self.kinds where injectedTotal[kind, default: 0] == 0 {
            result.problem("no \(kind) fault was injected")
        }
        result.notes.insert(
            "\(trials) × \(records) records; faults injected: " + Self.kinds.map { "\($0) \(injectedTotal[$0, default: 0])" }.joined(separator: ", "),
            at: 0)
        return result
    }
}
