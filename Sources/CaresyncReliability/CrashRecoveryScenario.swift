import Foundation

/// `kill-9`: `caresync daemon` is killed with SIGKILL at random points of an initial sync (two providers
/// into an empty hub, with fan-out of shared patients and planted conflicts) and restarted each time.
/// After the last restart the peers must converge: every record exactly once at the hub and at each
/// provider that holds its patient (counted by business identifier), every planted conflict recorded
/// exactly once and no other, no dead letter, no quarantine, the audit chain intact, and the daemon
/// stops cleanly on SIGTERM.
///
/// A kill is counted only when the sync had not finished at that moment; a trial whose sync finishes
/// before its kills are used up ends there, and a new trial (fresh stores and records) takes the
/// remaining kills.
struct CrashRecoveryScenario {
    let scale: ReliabilityScale
    let environment: ReliabilityEnvironment

    var records: Int { scale == .full ? 10_000 : 450 }
    var totalKills: Int { scale == .full ? 50 : 3 }
    var killsPerTrial: Int { scale == .full ? 10 : 3 }
    /// The range of running time before each kill, in milliseconds.
    var killDelay: ClosedRange<Int> { scale == .full ? 150...1_500 : 300...2_500 }

    func run() async throws -> ScenarioResult {
        var result = ScenarioResult(scenario: ReliabilityScenario.crashRecovery.rawValue)
        var random = SeededRandom(seed: environment.seed ^ 0x6B69_6C6C)
        var kills = 0
        var progressAtKills: [Int] = []
        var trial = 0
        while kills < totalKills, trial < 3 * (totalKills / killsPerTrial + 1) {
            trial += 1
            let cluster = try Cluster(environment: environment, label: "kill-\(trial)")
            var passed = false
            do {
                try await cluster.startStores()
                let plan = SeedPlan(records: records, providers: cluster.providers.map(\.name), conflicts: 3, prefix: "K\(trial)")
                try await cluster.seed(plan)
                try cluster.writeConfiguration(interval: "500ms", pageSize: scale == .full ? 500 : 100)
                environment.log("kill-9: trial \(trial): \(plan.recordCount) records at the providers, \(plan.hubKeys.count) for the hub")
                let hubTarget = plan.hubKeys.count
                var trialKills = 0
                while trialKills < killsPerTrial, kills < totalKills {
                    try cluster.daemon.start()
                    try await Task.sleep(for: .milliseconds(Int.random(in: killDelay, using: &random)))
                    if try await cluster.isSettled(plan) { break }
                    let atHub = (try? await cluster.access(cluster.hub).totalAll()) ?? -1
                    await cluster.daemon.kill()
                    trialKills += 1
                    kills += 1
                    progressAtKills.append(hubTarget > 0 ? atHub * 100 / hubTarget : 0)
                }
                if !cluster.daemon.isRunning { try cluster.daemon.start() }
                let settled = try await cluster.waitUntilSettled(plan, timeout: .seconds(scale == .full ? 900 : 300))
                if !settled {
                    result.problem("trial \(trial): did not converge after \(trialKills) kills; daemon log: \(cluster.daemon.logTail(5))")
                }
                let ledger = try await cluster.ledger(plan)
                result.add(ledger, trial: "trial \(trial)")
                let status = await cluster.daemon.stop()
                if status != 0 { result.problem("trial \(trial): the daemon exited with \(status.map(String.init) ?? "?") on SIGTERM") }
                environment.log(
                    "kill-9: trial \(trial): \(trialKills) kills, converged: \(settled), lost \(ledger.lost), duplicated \(ledger.duplicated), open conflicts \(ledger.conflicts)")
                passed = settled && ledger.isClean && status == 0
            } catch {
                result.problem("trial \(trial): \(error)")
            }
            await cluster.shutdown()
            if passed && !environment.keepFiles { cluster.removeFiles() } else { result.notes.append("files of trial \(trial): \(cluster.directory)") }
        }
        result.trials = kills
        if kills < totalKills { result.problem("only \(kills) of \(totalKills) kills landed before a sync finished") }
        let sorted = progressAtKills.sorted()
        if let first = sorted.first, let last = sorted.last {
            result.notes.insert("\(kills) SIGKILLs over \(trial) syncs of \(records) records; hub held \(first)–\(last)% (median \(sorted[sorted.count / 2])%) of its records at the kills", at: 0)
        }
        return result
    }
}
