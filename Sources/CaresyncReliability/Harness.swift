public import Foundation

/// How much each scenario does: `short` is the form `swift test` runs (minutes on a 2-core machine, debug
/// build), `full` the form of `make reliability` (release build).
public enum ReliabilityScale: String, Sendable, CaseIterable {
    case short
    case full
}

/// Where the scenarios find the products and put their files, and how they report progress.
public struct ReliabilityEnvironment: Sendable {
    /// The `caresync` executable (its `daemon` subcommand is what is killed).
    public var caresync: URL
    /// The `caresync-store` executable.
    public var store: URL
    /// `python3`, for the hostile peer.
    public var python: String
    /// Where each scenario makes its directory.
    public var workDirectory: String
    /// The seed of every random choice (kill points, fault sequences), printed so a run can be repeated.
    public var seed: UInt64
    /// Whether to keep each scenario's files even when it passed.
    public var keepFiles: Bool
    /// Progress lines.
    public var log: @Sendable (String) -> Void

    /// Products from `binDirectory` (where `swift build` puts `caresync` and `caresync-store`).
    public init(
        binDirectory: URL, workDirectory: String = NSTemporaryDirectory(), seed: UInt64, keepFiles: Bool = false,
        python: String = "python3", log: @escaping @Sendable (String) -> Void
    ) {
        caresync = binDirectory.appendingPathComponent("caresync")
        store = binDirectory.appendingPathComponent("caresync-store")
        self.python = python
        self.workDirectory = workDirectory
        self.seed = seed
        self.keepFiles = keepFiles
        self.log = log
    }

    /// A new directory for one scenario or trial.
    func makeDirectory(_ label: String) throws -> String {
        var template = Array("\(workDirectory)/caresync-reliability-\(label)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw ReliabilityError("cannot create a directory under \(workDirectory)") }
        return String(cString: made)
    }

    func checkProducts() throws {
        for product in [caresync, store] where !FileManager.default.isExecutableFile(atPath: product.path) {
            throw ReliabilityError("\(product.path) is not built (swift build)")
        }
    }
}

/// One scenario's outcome: the row of the table.
public struct ScenarioResult: Sendable {
    /// The scenario's name (``ReliabilityScenario``'s raw value).
    public var scenario: String
    /// Trials run (kills, fault seeds, hostile inputs, restores, disk-full episodes).
    public var trials: Int
    /// Records that should be somewhere and are not (counted by business identifier), summed over trials.
    public var lost = 0
    /// Extra copies of a record at one peer, summed over trials.
    public var duplicated = 0
    /// Whether every error the scenario provoked was reported as documented (docs/reliability.md).
    public var errorsAsDocumented = true
    /// What went wrong, one line each; empty when the scenario passed.
    public var problems: [String] = []
    /// Figures worth reporting (kill points, faults injected, time taken).
    public var notes: [String] = []
    /// Why the scenario could not run here (it then neither passes nor fails).
    public var skipped: String?

    public init(scenario: String, trials: Int = 0) {
        self.scenario = scenario
        self.trials = trials
    }

    /// Whether nothing was lost or duplicated, every error was as documented, and nothing else failed.
    public var passed: Bool { skipped == nil && lost == 0 && duplicated == 0 && errorsAsDocumented && problems.isEmpty }

    /// Whether the scenario ran and did not pass.
    public var failed: Bool { skipped == nil && !passed }

    /// `passed`, `FAILED` or `skipped`.
    public var outcome: String { skipped != nil ? "skipped" : passed ? "passed" : "FAILED" }

    mutating func problem(_ text: String) {
        if problems.count < 20 { problems.append(text) }
    }

    mutating func add(_ ledger: Ledger, trial: String) {
        lost += ledger.lost
        duplicated += ledger.duplicated
        if !ledger.isClean {
            problem("\(trial): lost \(ledger.lost), duplicated \(ledger.duplicated), unexpected \(ledger.unexpected), conflicts off \(ledger.conflictProblems), unexplained \(ledger.unexplained): " + ledger.notes.joined(separator: "; "))
        }
    }
}

/// The scenarios of the reliability suite (docs/reliability.md).
public enum ReliabilityScenario: String, Sendable, CaseIterable {
    /// SIGKILL the daemon at random points of an initial sync; after the restarts the peers converge.
    case crashRecovery = "kill-9"
    /// 20% faults of every kind at every store; the system converges, nothing is created twice.
    case faults
    /// A corpus of hostile inputs; each gets its documented error, the rest keeps syncing.
    case hostileInput = "hostile-input"
    /// A provider restored from an older backup is detected and reported within one cycle.
    case restoredPeer = "restored-peer"
    /// The state directory runs out of space; the daemon stops taking work and resumes when space returns.
    case diskFull = "disk-full"

    /// Runs the scenario; a harness failure becomes a failed result, never a crash.
    public func run(scale: ReliabilityScale, environment: ReliabilityEnvironment) async -> ScenarioResult {
        let started = ContinuousClock.now
        var result: ScenarioResult
        do {
            try environment.checkProducts()
            switch self {
            case .crashRecovery: result = try await CrashRecoveryScenario(scale: scale, environment: environment).run()
            case .faults: result = try await FaultScenario(scale: scale, environment: environment).run()
            case .hostileInput: result = try await HostileInputScenario(scale: scale, environment: environment).run()
            case .restoredPeer: result = try await RestoredPeerScenario(scale: scale, environment: environment).run()
            case .diskFull: result = try await DiskFullScenario(scale: scale, environment: environment).run()
            }
        } catch {
            result = ScenarioResult(scenario: rawValue)
            result.problem("the harness failed: \(error)")
        }
        let elapsed = ContinuousClock.now - started
        result.notes.append("\(elapsed.components.seconds) s")
        return result
    }
}

/// The suite's table and summary line.
public enum ReliabilityReport {
    /// `scenario  trials  lost  duplicated  errors as documented  result`, one row per scenario.
    public static func table(_ results: [ScenarioResult]) -> String {
        let header = ["scenario", "trials", "lost", "duplicated", "errors as documented", "result"]
        let rows = results.map { result in
            [
                result.scenario, String(result.trials), String(result.lost), String(result.duplicated),
                result.errorsAsDocumented ? "yes" : "no", result.outcome,
            ]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// The same table in Markdown, with each scenario's notes.
    public static func markdown(_ results: [ScenarioResult]) -> String {
        var text = "| scenario | trials | lost | duplicated | errors as documented | result | notes |\n|---|---|---|---|---|---|---|\n"
        for result in results {
            text += "| \(result.scenario) | \(result.trials) | \(result.lost) | \(result.duplicated) | "
            text += "\(result.errorsAsDocumented ? "yes" : "no") | \(result.outcome) | "
            text += result.notes.joined(separator: "; ").replacingOccurrences(of: "|", with: "\\|") + " |\n"
        }
        return text
    }

    /// `N passed, N failed` (skipped scenarios are in neither count; the table shows them).
    public static func summary(_ results: [ScenarioResult]) -> String {
        "\(results.filter(\.passed).count) passed, \(results.filter(\.failed).count) failed"
    }
}

/// SplitMix64: the scenarios' random choices, repeatable from the printed seed.
struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
