import CaresyncHTTP
import Configuration
import FHIRModel
public import Foundation
import Logging
import SystemPackage

/// Loads a ``CaresyncConfiguration`` from a YAML file, `CARESYNC_…` environment overrides and secrets in
/// files or in systemd's `$CREDENTIALS_DIRECTORY`, and reports every problem at once.
///
/// Precedence, highest first: `overrides` (command-line options), environment variables
/// (`sync.pageSize` ← `CARESYNC_SYNC_PAGE_SIZE`, `providers[1].baseURL` ← `CARESYNC_PROVIDERS_1_BASE_URL`),
/// the file, the defaults. A `CARESYNC_…` variable that names no key is an error, as is an unknown key in
/// the file. Relative paths in the file are taken from the file's directory; `credential:NAME` names a
/// file in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
public struct ConfigurationLoader: Sendable {
    /// Where the daemon looks when `--config` is not given.
    public static let defaultPath = "/etc/caresync/caresync.yaml"

    /// The YAML file.
    public var filePath: String
    /// The process environment (`CARESYNC_…`, `CREDENTIALS_DIRECTORY`, `STATE_DIRECTORY`).
    public var environment: [String: String]
    /// Values from command-line options by key (`"state.path"` from `--state-dir`), above everything else.
    public var overrides: [String: String]

    /// A loader for `filePath` under `environment`, with `overrides` from the command line.
    public init(
        filePath: String = ConfigurationLoader.defaultPath,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        overrides: [String: String] = [:]
    ) {
        self.filePath = filePath
        self.environment = environment
        self.overrides = overrides
    }

    /// Reads and checks everything; throws a ``ConfigurationError`` listing every problem found.
    public func load() async throws(ConfigurationError) -> CaresyncConfiguration {
        let absolutePath = filePath.hasPrefix("/") ? filePath : FileManager.default.currentDirectoryPath + "/" + filePath
        let baseDirectory = (absolutePath as NSString).deletingLastPathComponent
        let text: String
        do {
            text = try Self.readText(atPath: absolutePath)
        } catch {
            throw ConfigurationError(problems: [.init(keyPath: "<file>", code: .unreadableFile, message: error.message)], file: filePath)
        }
        let walker = YAMLWalker(yaml: text)
        guard walker.parsed else { throw ConfigurationError(problems: walker.problems, file: filePath) }
        var problems = walker.problems

        let variables = environment.filter { $0.key.hasPrefix(EnvironmentName.prefix.uppercased() + "_") }
        let leafPaths = ConfigurationKeys.leafPaths { walker.listCounts[$0] ?? 0 }
        let pathsByVariable = Dictionary(leafPaths.map { (EnvironmentName.forKey($0.configKeyComponents), $0) }) { first, _ in first }
        for name in variables.keys.sorted() where pathsByVariable[name] == nil {
            problems.append(
                .init(
                    keyPath: name, code: .unknownEnvironmentVariable,
                    message: "this environment variable names no configuration key (list items must exist in the file)"))
        }

        var credentials: ConfigReader?
        if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty {
            do {
                credentials = ConfigReader(provider: try await DirectoryFilesProvider(directoryPath: .init(directory)))
            } catch {
                problems.append(
                    .init(keyPath: "CREDENTIALS_DIRECTORY", code: .unreadableReference, message: "cannot read the credentials directory \(directory)"))
            }
        }

        var overrideValues: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, value) in overrides {
            overrideValues[AbsoluteConfigKey(ConfigKey(key))] = ConfigValue(.string(value), isSecret: false)
        }
        let reader = ConfigReader(providers: [
            InMemoryProvider(name: "command line", values: overrideValues),
            EnvironmentVariablesProvider(environmentVariables: variables).prefixKeys(with: ConfigKey(EnvironmentName.prefix)),
            InMemoryProvider(name: filePath, values: walker.values),
        ])
        var fields = FieldReader(
            reader: reader, variables: variables, overrides: Set(overrides.keys), walker: walker,
            baseDirectory: baseDirectory, environment: environment, credentials: credentials)
        let configuration = fields.readConfiguration()
        problems += fields.problems
        if let configuration {
            for problem in configuration.problems() where !problems.contains(problem) {
                problems.append(problem)
            }
            if problems.isEmpty { return configuration }
        }
        throw ConfigurationError(problems: problems, file: filePath)
    }

    struct FileError: Error {
        let message: String
    }

    static func readText(atPath path: String) throws(FileError) -> String {
        let bytes: [UInt8]
        do {
            bytes = try readBytes(atPath: path)
        } catch {
            throw FileError(message: "cannot read \(path): \(error.message)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw FileError(message: "\(path) is not UTF-8 text")
        }
        return text
    }

    /// Reads a whole file (up to 4 MiB: configuration, keys and tokens are small).
    static func readBytes(atPath path: String) throws(FileError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileError(message: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw FileError(message: String(cString: strerror(errno))) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw FileError(message: "not a regular file") }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FileError(message: String(cString: strerror(errno)))
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
            if bytes.count > 4 * 1024 * 1024 { throw FileError(message: "larger than 4 MiB") }
        }
        return bytes
    }
}

/// Reads typed values key by key, collecting a problem for each value that is missing or wrong.
private struct FieldReader {
    let reader: ConfigReader
    let variables: [String: String]
    let overrides: Set<String>
    let walker: YAMLWalker
    let baseDirectory: String
    let environment: [String: String]
    let credentials: ConfigReader?
    var problems: [ConfigurationProblem] = []

    init(
        reader: ConfigReader, variables: [String: String], overrides: Set<String>, walker: YAMLWalker,
        baseDirectory: String, environment: [String: String], credentials: ConfigReader?
    ) {
        self.reader = reader
        self.variables = variables
        self.overrides = overrides
        self.walker = walker
        self.baseDirectory = baseDirectory
        self.environment = environment
        self.credentials = credentials
    }

    // MARK: Sections

    mutating func readConfiguration() -> CaresyncConfiguration? {
        let statePath: [KeyComponent] = [.key("state"), .key("path")]
        let state = StateSettings(path: absolutePath(string(statePath)) ?? StateSettings.defaultPath(environment: environment))
        if string(statePath) == "" { problem(statePath, .invalidValue, "the state directory path is empty") }
        let sync = readSync()
        let policy = string([.key("policy")]).flatMap { reference($0, at: [.key("policy")]) }.map(PolicySource.file) ?? .embedded
        let hubPath: [KeyComponent] = [.key("hub")]
        var hub: PeerDraft?
        if isPresent(hubPath) {
            hub = readPeer(at: hubPath)
        } else {
            problem(hubPath, .missing, "the hub is required (name, ods, baseURL, auth)")
        }
        let providerCount = walker.listCounts[[.key("providers")]] ?? 0
        if providerCount == 0 {
            problem([.key("providers")], .missing, "at least one provider is required")
        }
        var providers: [ProviderConfiguration?] = []
        var drafts: [(path: String, name: String?, ods: String?)] = hub.map { [("hub", $0.name, $0.ods)] } ?? []
        for index in 0..<providerCount {
            let path: [KeyComponent] = [.key("providers"), .index(index)]
            let draft = readPeer(at: path)
            drafts.append((path.displayPath, draft.name, draft.ods))
            let mode = required(path + [.key("mode")]).flatMap { choice(ProviderMode.self, $0, at: path + [.key("mode")]) }
            let scope = string(path + [.key("scope")]).flatMap { choice(FanOutScope.self, $0, at: path + [.key("scope")]) } ?? .heldPatients
            if let peer = draft.peer, let mode {
                providers.append(ProviderConfiguration(peer: peer, mode: mode, scope: scope))
            } else {
                providers.append(nil)
            }
        }
        problems += ConfigurationRules.uniquenessProblems(drafts)
        let metrics = readMetrics()
        let log = readLog()

        guard let hubPeer = hub?.peer, let sync, let metrics, let log else { return nil }
        let complete = providers.compactMap { $0 }
        guard complete.count == providers.count else { return nil }
        return CaresyncConfiguration(state: state, sync: sync, policy: policy, hub: hubPeer, providers: complete, metrics: metrics, log: log)
    }

    mutating func readSync() -> SyncSettings? {
        let base: [KeyComponent] = [.key("sync")]
        var settings = SyncSettings()
        var valid = true
        if let interval = duration(base + [.key("interval")]) { settings.interval = interval } else if isSet(base + [.key("interval")]) { valid = false }
        if let margin = duration(base + [.key("clockSkewMargin")]) {
            settings.clockSkewMargin = margin
        } else if isSet(base + [.key("clockSkewMargin")]) {
            valid = false
        }
        if let pageSize = integer(base + [.key("pageSize")]) { settings.pageSize = pageSize } else if isSet(base + [.key("pageSize")]) { valid = false }
        if let names = stringList(base + [.key("resourceTypes")]) {
            var types: [ResourceType] = []
            for name in names {
                if let type = ResourceType(rawValue: name) {
                    types.append(type)
                } else {
                    valid = false
                    problem(
                        base + [.key("resourceTypes")], .invalidValue,
                        "\"\(name)\" is not a type caresync synchronises (allowed: \(ResourceType.synchronised.map(\.rawValue).joined(separator: ", ")))")
                }
            }
            settings.resourceTypes = types
        } else if isSet(base + [.key("resourceTypes")]) {
            valid = false
        }
        let ruleProblems = ConfigurationRules.syncProblems(settings)
        problems += ruleProblems
        return valid && ruleProblems.isEmpty ? settings : nil
    }

    struct PeerDraft {
        var name: String?
        var ods: String?
        var peer: PeerConfiguration?
    }

    mutating func readPeer(at path: [KeyComponent]) -> PeerDraft {
        let name = required(path + [.key("name")])
        let ods = required(path + [.key("ods")])
        if let name { problems += ConfigurationRules.nameProblems(name, at: path.displayPath) }
        if let ods { problems += ConfigurationRules.odsProblems(ods, at: path.displayPath) }
        let baseURL = required(path + [.key("baseURL")]).flatMap { peerURL($0, at: path + [.key("baseURL")]) }
        let tls = readTLS(at: path + [.key("tls")])
        let auth = readAuth(at: path + [.key("auth")])
        var draft = PeerDraft(name: name, ods: ods)
        if let auth, let tls {
            problems += ConfigurationRules.authProblems(auth, tls: tls, at: path.displayPath)
            if let name, let ods, let baseURL {
                draft.peer = PeerConfiguration(name: name, ods: ods, baseURL: baseURL, auth: auth, tls: tls)
            }
        }
        return draft
    }

    static let authKeys: [String: Set<String>] = [
        "none": [],
        "mtls": [],
        "bearer": ["tokenFile"],
        "oauth2-client-credentials": ["tokenURL", "clientID", "privateKeyFile", "keyID", "scope"],
    ]

    mutating func readAuth(at path: [KeyComponent]) -> AuthConfiguration? {
        guard isPresent(path) else {
            problem(path, .missing, "auth is required (type: none, bearer, oauth2-client-credentials or mtls)")
            return nil
        }
        guard let type = required(path + [.key("type")]) else { return nil }
        guard let allowed = Self.authKeys[type] else {
            problem(path + [.key("type")], .invalidValue, "\"\(type)\" is not an auth type (none, bearer, oauth2-client-credentials, mtls)")
            return nil
        }
        var valid = true
        for key in ["tokenFile", "tokenURL", "clientID", "privateKeyFile", "keyID", "scope"] where !allowed.contains(key) {
            if isSet(path + [.key(key)]) {
                problem(path + [.key(key)], .unknownKey, "not used by auth type \(type)")
                valid = false
            }
        }
        switch type {
        case "none":
            return valid ? AuthConfiguration.none : nil
        case "mtls":
            return valid ? .mutualTLS : nil
        case "bearer":
            guard let token = required(path + [.key("tokenFile")]).flatMap({ secret($0, at: path + [.key("tokenFile")]) }) else { return nil }
            guard AccessToken.isBearerToken(token.trimmedText) else {
                problem(path + [.key("tokenFile")], .invalidValue, "\(token.origin) does not hold a bearer token (RFC 6750 token characters only)")
                return nil
            }
            return valid ? .bearer(token: token) : nil
        default:
            let tokenURL = required(path + [.key("tokenURL")]).flatMap { peerURL($0, at: path + [.key("tokenURL")]) }
            let clientID = required(path + [.key("clientID")])
            let keyPath = path + [.key("privateKeyFile")]
            var privateKey = required(keyPath).flatMap { secret($0, at: keyPath) }
            if let key = privateKey {
                do {
                    _ = try RS512Signer(pem: key.bytes)
                } catch {
                    problem(keyPath, .invalidKey, "\(key.origin): \(error.message)")
                    privateKey = nil
                }
            }
            let keyID = string(path + [.key("keyID")])
            let scope = string(path + [.key("scope")])
            guard valid, let tokenURL, let clientID, let privateKey else { return nil }
            return .oauth2ClientCredentials(
                OAuth2ClientCredentialsSettings(tokenURL: tokenURL, clientID: clientID, privateKey: privateKey, keyID: keyID, scope: scope))
        }
    }

    mutating func readTLS(at path: [KeyComponent]) -> TLSSettings? {
        var settings = TLSSettings()
        var valid = true
        let certificateSet = isSet(path + [.key("clientCert")])
        if certificateSet != isSet(path + [.key("clientKey")]) {
            problem(path + [.key(certificateSet ? "clientKey" : "clientCert")], .missing, "tls.clientCert and tls.clientKey go together")
            valid = false
        }
        let files: [(String, WritableKeyPath<TLSSettings, FileReference?>)] = [
            ("caFile", \.caFile), ("clientCert", \.clientCertificate), ("clientKey", \.clientKey),
        ]
        for (key, target) in files {
            guard let written = string(path + [.key(key)]) else {
                if isSet(path + [.key(key)]) { valid = false }
                continue
            }
            if let reference = reference(written, at: path + [.key(key)]) {
                settings[keyPath: target] = reference
            } else {
                valid = false
            }
        }
        if let pinned = string(path + [.key("pinnedPublicKey")]) {
            if let value = pinnedPublicKey(pinned, at: path + [.key("pinnedPublicKey")]) { settings.pinnedPublicKey = value } else { valid = false }
        }
        if let version = string(path + [.key("minVersion")]) {
            if let value = TLSVersion(configurationValue: version) {
                settings.minimumVersion = value
            } else {
                problem(path + [.key("minVersion")], .invalidValue, "TLS \(version) is not accepted: the minimum is 1.2 or 1.3")
                valid = false
            }
        }
        return valid ? settings : nil
    }

    mutating func readMetrics() -> MetricsSettings? {
        let base: [KeyComponent] = [.key("metrics")]
        var settings = MetricsSettings()
        var valid = true
        if let enabled = boolean(base + [.key("enabled")]) { settings.enabled = enabled } else if isSet(base + [.key("enabled")]) { valid = false }
        if let allow = boolean(base + [.key("allowNonLoopback")]) {
            settings.allowNonLoopback = allow
        } else if isSet(base + [.key("allowNonLoopback")]) {
            valid = false
        }
        if let listen = string(base + [.key("listen")]) {
            do {
                settings.listen = try ListenAddress(parsing: listen)
            } catch {
                problem(base + [.key("listen")], error.code, error.message)
                valid = false
            }
        }
        guard valid else { return nil }
        let ruleProblems = ConfigurationRules.metricsProblems(settings)
        problems += ruleProblems
        return ruleProblems.isEmpty ? settings : nil
    }

    mutating func readLog() -> LogSettings? {
        let path: [KeyComponent] = [.key("log"), .key("level")]
        guard let text = string(path) else { return isSet(path) ? nil : LogSettings() }
        guard let level = Logger.Level(rawValue: text) else {
            problem(path, .invalidValue, "\"\(text)\" is not a log level (trace, debug, info, notice, warning, error, critical)")
            return nil
        }
        return LogSettings(level: level)
    }

    // MARK: Values

    /// Whether the file has the mapping at `path`, or any variable sets a key under it.
    func isPresent(_ path: [KeyComponent]) -> Bool {
        if walker.mappingPaths.contains(path) { return true }
        let prefix = EnvironmentName.forKey(path.configKeyComponents) + "_"
        return variables.keys.contains { $0.hasPrefix(prefix) }
    }

    /// Whether any source sets the key (even to a value of the wrong type, already reported).
    func isSet(_ path: [KeyComponent]) -> Bool {
        let key = path.configKeyComponents
        return overrides.contains(key.joined(separator: ".")) || variables[EnvironmentName.forKey(key)] != nil
            || walker.values[AbsoluteConfigKey(key)] != nil || walker.problems.contains { $0.keyPath == path.displayPath }
    }

    /// `(from CARESYNC_X)` when the value came from the environment.
    func origin(_ path: [KeyComponent]) -> String {
        let key = path.configKeyComponents
        if overrides.contains(key.joined(separator: ".")) { return " (from the command line)" }
        let name = EnvironmentName.forKey(key)
        return variables[name] != nil ? " (from \(name))" : ""
    }

    mutating func string(_ path: [KeyComponent]) -> String? {
        reader.string(forKey: ConfigKey(path.configKeyComponents))
    }

    mutating func required(_ path: [KeyComponent]) -> String? {
        if let value = string(path) { return value }
        if !isSet(path) { problem(path, .missing, "required") }
        return nil
    }

    mutating func stringList(_ path: [KeyComponent]) -> [String]? {
        reader.stringArray(forKey: ConfigKey(path.configKeyComponents))
    }

    mutating func integer(_ path: [KeyComponent]) -> Int? {
        guard let text = string(path) else { return nil }
        guard let value = Int(text) else {
            problem(path, .wrongType, "expected a whole number, found \"\(text.prefix(40))\"\(origin(path))")
            return nil
        }
        return value
    }

    mutating func boolean(_ path: [KeyComponent]) -> Bool? {
        guard let text = string(path) else { return nil }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default:
            problem(path, .wrongType, "expected true or false, found \"\(text.prefix(40))\"\(origin(path))")
            return nil
        }
    }

    /// A duration: seconds as a number in the file (or as bare digits in a variable or option), else text
    /// with a unit.
    mutating func duration(_ path: [KeyComponent]) -> Duration? {
        let key = ConfigKey(path.configKeyComponents)
        var seconds: Double?
        var text: String?
        if let value = reader.string(forKey: key) {
            text = value
            if !origin(path).isEmpty, let number = Double(value), value.first.map({ $0.isNumber || $0 == "-" || $0 == "." }) == true {
                seconds = number
            }
        } else {
            seconds = reader.double(forKey: key)
        }
        if let seconds {
            if seconds <= DurationText.maximumSeconds, let value = DurationText.seconds(seconds) { return value }
            problem(path, .invalidValue, "\(seconds) seconds is out of range (0 to \(Int(DurationText.maximumSeconds)))\(origin(path))")
            return nil
        }
        guard let text else { return nil }
        guard let value = DurationText.parse(text) else {
            problem(path, .wrongType, "expected a duration such as 30s, 500ms, 5m or a number of seconds, found \"\(text.prefix(40))\"\(origin(path))")
            return nil
        }
        return value
    }

    mutating func choice<Choice: RawRepresentable & CaseIterable>(_ type: Choice.Type, _ text: String, at path: [KeyComponent]) -> Choice?
    where Choice.RawValue == String {
        if let value = Choice(rawValue: text) { return value }
        let allowed = Choice.allCases.map(\.rawValue).joined(separator: ", ")
        problem(path, .invalidValue, "\"\(text.prefix(40))\" is not one of \(allowed)\(origin(path))")
        return nil
    }

    mutating func peerURL(_ text: String, at path: [KeyComponent]) -> PeerURL? {
        do {
            return try PeerURL(text)
        } catch {
            problem(path, error.code, error.message + origin(path))
            return nil
        }
    }

    func absolutePath(_ text: String?) -> String? {
        guard let text else { return nil }
        return text.hasPrefix("/") ? text : baseDirectory + "/" + text
    }

    /// A file reference that exists and can be read.
    mutating func reference(_ written: String, at path: [KeyComponent]) -> FileReference? {
        let reference: FileReference
        do {
            reference = try FileReference(resolving: written, baseDirectory: baseDirectory, credentialsDirectory: environment["CREDENTIALS_DIRECTORY"])
        } catch {
            problem(path, error.code, error.message)
            return nil
        }
        do {
            _ = try ConfigurationLoader.readBytes(atPath: reference.path)
        } catch {
            problem(path, .unreadableReference, "cannot read \(reference): \(error.message)")
            return nil
        }
        return reference
    }

    /// The contents of a secret file; systemd credentials are read through swift-configuration's
    /// `DirectoryFilesProvider` over `$CREDENTIALS_DIRECTORY`.
    mutating func secret(_ written: String, at path: [KeyComponent]) -> SecretValue? {
        if written.hasPrefix(FileReference.credentialPrefix) {
            let name = String(written.dropFirst(FileReference.credentialPrefix.count))
            guard FileReference.isCredentialName(name), !name.contains(".") else {
                problem(path, .invalidValue, "a credential name has letters, digits, '-' and '_' only (found \"\(name.prefix(40))\")")
                return nil
            }
            guard let credentials else {
                problem(path, .credentialMissing, "credential \"\(name)\" is named but $CREDENTIALS_DIRECTORY is not set (LoadCredential= in the unit)")
                return nil
            }
            guard let bytes = credentials.bytes(forKey: ConfigKey([name]), isSecret: true) else {
                problem(path, .credentialMissing, "credential \"\(name)\" is not in $CREDENTIALS_DIRECTORY")
                return nil
            }
            return SecretValue(bytes: bytes, origin: written)
        }
        guard let reference = reference(written, at: path) else { return nil }
        do {
            return SecretValue(bytes: try ConfigurationLoader.readBytes(atPath: reference.path), origin: reference.path)
        } catch {
            problem(path, .unreadableReference, "cannot read \(reference): \(error.message)")
            return nil
        }
    }

    mutating func pinnedPublicKey(_ text: String, at path: [KeyComponent]) -> PinnedPublicKey? {
        guard text.hasPrefix("sha256//") else {
            return reference(text, at: path).map(PinnedPublicKey.file)
        }
        var hashes: [String] = []
        for part in text.split(separator: ";", omittingEmptySubsequences: false) {
            guard part.hasPrefix("sha256//"),
                let digest = Data(base64Encoded: String(part.dropFirst("sha256//".count))), digest.count == 32
            else {
                problem(path, .invalidValue, "expected sha256//<base64 SHA-256 of the public key>, several separated by ';'")
                return nil
            }
            hashes.append(String(part.dropFirst("sha256//".count)))
        }
        return .sha256(hashes: hashes)
    }

    mutating func problem(_ path: [KeyComponent], _ code: ConfigurationProblem.Code, _ message: String) {
        let problem = ConfigurationProblem(keyPath: path.displayPath, code: code, message: message)
        if !problems.contains(problem) { problems.append(problem) }
    }
}
