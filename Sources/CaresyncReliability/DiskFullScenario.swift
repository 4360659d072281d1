import Foundation

/// `disk-full`: the state directory runs out of space while records keep arriving.
///
/// The state directory is a small `tmpfs` mounted for the scenario (needs root, as CI runs; otherwise
/// the scenario is reported as skipped, not passed). After a first sync, a filler file takes every free
/// byte; a second batch of records is created at the providers. The daemon must stop taking work with a
/// clear error in its log (SQLite's "database or disk is full"), keep running (or, if it exits, exit
/// with a failure status as systemd's `Restart=on-failure` expects), lose nothing already synced and not
/// half-apply anything: the hub gains no record while the disk is full. When the filler is removed the
/// daemon resumes (restarted first if it had exited, as systemd would) and the peers converge on both
/// batches with nothing lost or duplicated.
struct DiskFullScenario {
    let scale: ReliabilityScale
    let environment: ReliabilityEnvironment

    var trials: Int { scale == .full ? 2 : 1 }
    var records: Int { scale == .full ? 600 : 150 }

    func run() async throws -> ScenarioResult {
        var result = ScenarioResult(scenario: ReliabilityScenario.diskFull.rawValue, trials: trials)
        guard geteuid() == 0 else {
            result.trials = 0
            result.skipped = "not run: mounting a tmpfs on the state directory needs root (CI runs as root)"
            return result
        }
        var behaviours: [String] = []
        for trial in 1...trials {
            let directory = try environment.makeDirectory("diskfull-state-\(trial)")
            guard Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", directory]) else {
                result.trials = 0
                result.skipped = "not run: mount -t tmpfs failed (no CAP_SYS_ADMIN in this container?)"
                try? FileManager.default.removeItem(atPath: directory)
                return result
            }
            let cluster = try Cluster(environment: environment, label: "diskfull-\(trial)", stateDirectory: directory)
            var passed = false
            do {
                let behaviour = try await runTrial(trial, cluster: cluster, result: &result)
                behaviours.append(behaviour)
                passed = result.passed
            } catch {
                result.problem("trial \(trial): \(error)")
            }
            await cluster.shutdown()
            _ = Self.run("/bin/umount", [directory])
            try? FileManager.default.removeItem(atPath: directory)
            if passed && !environment.keepFiles { cluster.removeFiles() } else { result.notes.append("files of trial \(trial): \(cluster.directory)") }
        }
        result.notes.insert("tmpfs of 16 MiB on the state directory; " + behaviours.joined(separator: "; "), at: 0)
        return result
    }

    private func runTrial(_ trial: Int, cluster: Cluster, result: inout ScenarioResult) async throws -> String {
        try await cluster.startStores()
        var plan = SeedPlan(records: records, providers: cluster.providers.map(\.name), conflicts: 0, prefix: "D\(trial)")
        try await cluster.seed(plan)
        try cluster.writeConfiguration(interval: "500ms", pageSize: 100)
        try cluster.daemon.start()
        guard try await cluster.waitUntilSettled(plan, timeout: .seconds(240)) else {
            throw ReliabilityError("the first sync did not converge; daemon log: \(cluster.daemon.logTail(5))")
        }
        let hub = cluster.access(cluster.hub)
        let beforeFull = try await hub.totalAll()

        // Fill the state directory, then give the providers new records. The log is read from before the
        // filling: the daemon reports a full directory once per outage, possibly before the seeding ends.
        let logBefore = (try? String(contentsOfFile: cluster.daemon.logPath, encoding: .utf8))?.count ?? 0
        let filler = cluster.stateDirectory + "/filler"
        let free = Self.fill(filler)
        environment.log("disk-full: trial \(trial): filled the state directory (\(free / 1024) KiB were free)")
        let second = SeedPlan(records: records, providers: cluster.providers.map(\.name), conflicts: 0, patientOffset: 40_000, prefix: "E\(trial)")
        try await cluster.seed(second)

        // While full: watch for five cycles.
        var hubWhileFull = beforeFull
        for _ in 0..<10 {
            try await Task.sleep(for: .milliseconds(500))
            hubWhileFull = max(hubWhileFull, try await hub.totalAll())
            if !cluster.daemon.isRunning { break }
        }
        let log = String(((try? String(contentsOfFile: cluster.daemon.logPath, encoding: .utf8)) ?? "").dropFirst(logBefore))
        let clearError = log.lowercased().contains("disk is full") || log.lowercased().contains("disk-full") || log.contains("No space left")
        let running = cluster.daemon.isRunning
        var behaviour = running ? "the daemon stayed up" : "the daemon exited"
        if !clearError {
            result.errorsAsDocumented = false
            result.problem("trial \(trial): no clear disk-full error in the daemon's log while the state directory was full; log: \(String(log.suffix(600)))")
        }
        if hubWhileFull != beforeFull {
            behaviour += " but kept syncing"
            result.problem("trial \(trial): the hub went from \(beforeFull) to \(hubWhileFull) records while the state directory was full (work taken without a durable record)")
        }
        if !running {
            let status = await cluster.daemon.stop()
            behaviour += " with status \(status.map(String.init) ?? "?")"
            if status == 0 { result.problem("trial \(trial): the daemon exited 0 on a full disk; systemd would not restart it") }
        }

        // Space returns.
        try? FileManager.default.removeItem(atPath: filler)
        if !cluster.daemon.isRunning {
            behaviour += ", restarted once space returned"
            try cluster.daemon.start()
        }
        plan.absorb(second)
        let settled = try await cluster.waitUntilSettled(plan, timeout: .seconds(scale == .full ? 300 : 240))
        if !settled { result.problem("trial \(trial): did not resume and converge once space returned; log: \(cluster.daemon.logTail(5))") }
        let ledger = try await cluster.ledger(plan)
        result.add(ledger, trial: "trial \(trial)")
        let status = await cluster.daemon.stop()
        if status != 0 { result.problem("trial \(trial): the daemon exited with \(status.map(String.init) ?? "?") on SIGTERM") }
        environment.log("disk-full: trial \(trial): \(behaviour); clear error: \(clearError); converged: \(settled), lost \(ledger.lost), duplicated \(ledger.duplicated)")
        return behaviour + (clearError ? ", with a clear error" : "") + (settled ? ", resumed" : "")
    }

    /// Writes `path` until the file system is full; returns the bytes written.
    static func fill(_ path: String) -> Int {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var written = 0
        var chunk = 1 << 20
        let buffer = [UInt8](repeating: 0x5A, count: chunk)
        while chunk >= 512 {
            let count = buffer.withUnsafeBytes { write(fd, $0.baseAddress, chunk) }
            if count > 0 {
                written += count
            } else {
                chunk /= 2
            }
        }
        fsync(fd)
        return written
    }

    /// Runs a system command; whether it exited 0.
    static func run(_ executable: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}
