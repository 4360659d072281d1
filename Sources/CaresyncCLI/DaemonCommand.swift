import ArgumentParser
import CaresyncDaemon
import Foundation
import Logging

/// `caresync daemon [--config F]`: the systemd service (DESIGN §6). Loads and checks the configuration,
/// opens the state store, reports `READY=1`, and syncs until SIGTERM (exit 0 after in-flight pushes are
/// drained). SIGHUP reloads the configuration; SIGUSR1 starts a sync pass at once.
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run the sync daemon (the systemd service): pull, merge and push until SIGTERM.",
        discussion: """
            Exit status: 0 after a graceful stop (SIGTERM, SIGINT), 2 when the configuration is invalid, 1 when \
            the daemon cannot start (the state store is locked by another daemon, damaged, or cannot be created).
            """
    )

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let path = global.config ?? ConfigurationLoader.defaultPath
        var overrides: [String: String] = [:]
        if let stateDirectory = global.stateDir {
            overrides["state.path"] =
                stateDirectory.hasPrefix("/") ? stateDirectory : FileManager.default.currentDirectoryPath + "/" + stateDirectory
        }
        let environment = ProcessInfo.processInfo.environment
        let loader = ConfigurationLoader(filePath: path, environment: environment, overrides: overrides)
        let configuration: CaresyncConfiguration
        do {
            configuration = try await loader.load()
        } catch {
            var report = ["\(path): \(error.problems.count) problem\(error.problems.count == 1 ? "" : "s")"]
            report += error.problems.map { "  \($0)" }
            FileHandle.standardError.write(Data((report.joined(separator: "\n") + "\n").utf8))
            throw CaresyncExitCode.invalidInput.exitCode
        }
        let logLevel = CaresyncLogging.bootstrap(level: configuration.log.level, environment: environment)
        let logger = Logger(label: "caresync.daemon")
        do {
            try await DaemonRuntime.run(
                configuration: configuration, loader: loader, environment: environment, logLevel: logLevel, logger: logger)
        } catch {
            logger.critical("caresync daemon failed", metadata: ["error": "\(error)"])
            throw CaresyncExitCode.failure.exitCode
        }
    }
}
