import ArgumentParser
import CaresyncDaemon
import Foundation

/// `caresync check-config [--config F]`: loads the configuration as the daemon would and lists every
/// problem under its key (exit 2), or prints a short summary of the peers (exit 0). Secrets are never
/// printed: only where they are read from.
struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check the configuration file and report every problem with its key."
    )

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let path = global.config ?? ConfigurationLoader.defaultPath
        var overrides: [String: String] = [:]
        if let stateDirectory = global.stateDir {
            overrides["state.path"] =
                stateDirectory.hasPrefix("/") ? stateDirectory : FileManager.default.currentDirectoryPath + "/" + stateDirectory
        }
        let loader = ConfigurationLoader(filePath: path, overrides: overrides)
        do {
            let configuration = try await loader.load()
            print(ConfigurationSummary.lines(for: configuration, file: path).joined(separator: "\n"))
        } catch {
            var report = ["\(path): \(error.problems.count) problem\(error.problems.count == 1 ? "" : "s")"]
            report += error.problems.map { "  \($0)" }
            FileHandle.standardError.write(Data((report.joined(separator: "\n") + "\n").utf8))
            throw CaresyncExitCode.invalidInput.exitCode
        }
    }
}
