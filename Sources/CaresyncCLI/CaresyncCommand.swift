public import ArgumentParser

/// The `caresync` command line: the daemon and the operator commands (names fixed by DESIGN §7).
public struct CaresyncCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "caresync",
        abstract: "Keeps care plans and care contacts in step between NHS providers and the ICB shared care record.",
        subcommands: [
            // The daemon and the operator commands (DESIGN §7), then the offline tools and the demo.
            DaemonCommand.self, StatusCommand.self, PeersCommand.self, QueueCommand.self, ConflictsCommand.self,
            ResyncCommand.self, AuditCommand.self, MergeCommand.self, ValidateCommand.self, CheckConfigCommand.self,
            SandboxCommand.self, GenerateManualCommand.self,
        ]
    )

    public init() {}
}

/// Options every command accepts.
public struct GlobalOptions: ParsableArguments {
    /// The configuration file.
    @Option(name: .long, help: "Configuration file (YAML).")
    public var config: String?

    /// The state directory holding the SQLite database and the lock file.
    @Option(name: .long, help: "State directory (overrides state.path from the configuration).")
    public var stateDir: String?

    public init() {}
}

/// Process exit codes shared by every command (DESIGN §7).
public enum CaresyncExitCode: Int32, Sendable {
    case ok = 0
    case failure = 1
    case invalidInput = 2
    case conflicts = 3
    case refused = 4

    /// The `ExitCode` argument-parser throws to end the process with this code.
    public var exitCode: ExitCode { ExitCode(rawValue) }
}
