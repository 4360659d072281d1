import CaresyncDaemon
import FHIRModel
import Foundation
import MergeCore
import StateStore
import Yams

/// What an operator command runs against: the state directory and, when a command needs it, the
/// configuration. Built from ``GlobalOptions``.
///
/// The state directory is `--state-dir` when given; otherwise `state.path` of the configuration
/// (`--config`, default `/etc/caresync/caresync.yaml`). Reading the state needs no secrets, so when the
/// full configuration cannot be loaded (typically: `credential:NAME` references outside systemd, where
/// `$CREDENTIALS_DIRECTORY` is not set) the state directory is still taken from the file's `state.path`
/// (or `CARESYNC_STATE_PATH`, or the default) — only commands that reach peers need the full load.
struct OperatorContext {
    let global: GlobalOptions
    let environment: [String: String]

    init(_ global: GlobalOptions, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.global = global
        self.environment = environment
    }

    var configurationPath: String { global.config ?? ConfigurationLoader.defaultPath }

    /// The configuration, fully loaded and checked (secrets read); every problem listed in the error.
    func configuration() async throws(OperatorError) -> CaresyncConfiguration {
        var overrides: [String: String] = [:]
        if let stateDirectory = global.stateDir { overrides["state.path"] = Self.absolute(stateDirectory) }
        do {
            return try await ConfigurationLoader(filePath: configurationPath, environment: environment, overrides: overrides).load()
        } catch {
            let problems = error.problems.map(\.description)
            let shown = problems.prefix(3).joined(separator: "; ") + (problems.count > 3 ? "; and \(problems.count - 3) more" : "")
            throw .invalidInput("the configuration \(configurationPath) cannot be used: \(shown) (caresync check-config lists every problem)")
        }
    }

    /// Where the state directory is (not checked to exist).
    func statePath() async throws(OperatorError) -> String {
        if let given = global.stateDir { return Self.absolute(given) }
        if let configured = try? await configuration() { return configured.state.path }
        return try statePathFromFile()
    }

    /// The state directory, checked to exist.
    func stateDirectory() async throws(OperatorError) -> String {
        let directory = try await statePath()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw .invalidInput("no state directory at \(directory) (give --state-dir, or check state.path in \(configurationPath))")
        }
        guard isDirectory.boolValue else {
            throw .invalidInput("the state directory \(directory) is not a directory")
        }
        return directory
    }

    /// Opens the state store in the state directory: `.reader` for listings, `.operator` for the short
    /// writes operators make while the daemon runs.
    func openStore(_ access: StoreAccess) async throws(OperatorError) -> SQLiteStateStore {
        let directory = try await stateDirectory()
        do {
            return try SQLiteStateStore.open(directory: directory, access: access)
        } catch {
            if error.code == .databaseMissing {
                throw .invalidInput("no state database in \(directory) (the daemon creates it on its first start; is --state-dir right?)")
            }
            throw .store(error)
        }
    }

    /// The merge policy the daemon runs: the configuration's `policy` file, else the embedded one. When
    /// the configuration cannot be fully loaded, its `policy` key is read from the file alone.
    func mergePolicy() async throws(OperatorError) -> MergePolicy {
        let path: String?
        if let configured = try? await configuration() {
            switch configured.policy {
            case .embedded: path = nil
            case .file(let reference): path = reference.path
            }
        } else {
            path = (try? yamlDocument())?["policy"].flatMap { $0 as? String }.map { written in
                written.hasPrefix("/") ? written : (Self.absolute(configurationPath) as NSString).deletingLastPathComponent + "/" + written
            }
        }
        guard let path else { return MergePolicy.default }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .failure("the merge policy \(path) named by the configuration cannot be read")
        }
        do {
            return try MergePolicy(bytes: [UInt8](data))
        } catch {
            throw .failure("the merge policy \(path) does not load: \(error.description)")
        }
    }

    /// The configuration file parsed as YAML, without any check (`nil` when absent or not a mapping).
    private func yamlDocument() throws -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: Self.absolute(configurationPath)),
            let text = String(data: data, encoding: .utf8)
        else { return nil }
        return try Yams.load(yaml: text) as? [String: Any]
    }

    /// `state.path` read from the file alone (no secrets, no other key checked), with the loader's
    /// precedence: `CARESYNC_STATE_PATH`, the file, `$STATE_DIRECTORY`, `/var/lib/caresync`.
    private func statePathFromFile() throws(OperatorError) -> String {
        let path = Self.absolute(configurationPath)
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw .invalidInput(
                "no state directory: --state-dir is not given and the configuration \(path) cannot be read")
        }
        if let fromEnvironment = environment["CARESYNC_STATE_PATH"], !fromEnvironment.isEmpty {
            return Self.absolute(fromEnvironment)
        }
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw .invalidInput("no state directory: --state-dir is not given and \(path) is not valid YAML")
        }
        if let state = (document as? [String: Any])?["state"] as? [String: Any], let written = state["path"] as? String,
            !written.isEmpty
        {
            return written.hasPrefix("/") ? written : (path as NSString).deletingLastPathComponent + "/" + written
        }
        return StateSettings.defaultPath(environment: environment)
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}

/// Who runs a command, for audit entries: the login name of the effective user, and under `sudo` the
/// user who ran sudo (`alice via sudo`).
enum OperatorUser {
    static func current(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let uid = geteuid()
        var name = "uid \(uid)"
        if let entry = getpwuid(uid), let login = entry.pointee.pw_name {
            name = String(cString: login)
        }
        if uid == 0, let sudoUser = environment["SUDO_USER"], !sudoUser.isEmpty, sudoUser != name {
            return "\(sudoUser) via sudo"
        }
        return name
    }
}

extension NHSNumber {
    /// Parses an NHS number given on the command line (`--patient`), or says which rule it breaks.
    static func operatorInput(_ text: String, option: String = "--patient") throws(OperatorError) -> NHSNumber {
        do {
            return try NHSNumber(validating: text)
        } catch {
            throw .invalidInput("\(option): not a valid NHS number: \(error.message)")
        }
    }
}
