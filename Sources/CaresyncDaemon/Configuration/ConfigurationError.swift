/// One thing wrong with a configuration, under the key path it concerns
/// (`providers[1].baseURL: plain http is only allowed to loopback addresses`).
public struct ConfigurationProblem: Sendable, Equatable, CustomStringConvertible {
    /// The key path: `sync.pageSize`, `providers[1].auth.tokenFile`, `CARESYNC_SYNC_INTERVAL`, or the file
    /// itself (`<file>`).
    public let keyPath: String
    /// A stable code for tests and tools.
    public let code: Code
    /// The rule that was broken, in a sentence. Never contains a secret.
    public let message: String

    /// A problem at `keyPath`.
    public init(keyPath: String, code: Code, message: String) {
        self.keyPath = keyPath
        self.code = code
        self.message = message
    }

    /// A problem's code and message before it is placed under a key path.
    public struct Detail: Error, Sendable, Equatable {
        /// What failed.
        public let code: Code
        /// What happened, in a sentence.
        public let message: String

        /// A problem's code and message.
        public init(_ code: Code, _ message: String) {
            self.code = code
            self.message = message
        }
    }

    init(_ keyPath: String, _ detail: Detail) {
        self.init(keyPath: keyPath, code: detail.code, message: detail.message)
    }

    public var description: String { "\(keyPath): \(message)" }

    /// A stable problem code.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The configuration file could not be read.
        public static let unreadableFile = Code(rawValue: "unreadable-file")
        /// The file is not YAML, or its top level is not a mapping.
        public static let syntax = Code(rawValue: "yaml-syntax")
        /// A key the configuration does not have (a typo, or a key of another auth type).
        public static let unknownKey = Code(rawValue: "unknown-key")
        /// The same key twice in one mapping.
        public static let duplicateKey = Code(rawValue: "duplicate-key")
        /// A value of the wrong type (a number where text is expected, …).
        public static let wrongType = Code(rawValue: "wrong-type")
        /// A required key is absent.
        public static let missing = Code(rawValue: "missing")
        /// A value outside its allowed set or range.
        public static let invalidValue = Code(rawValue: "invalid-value")
        /// A URL that does not parse.
        public static let invalidURL = Code(rawValue: "invalid-url")
        /// Plain http to a non-loopback host.
        public static let insecureURL = Code(rawValue: "insecure-url")
        /// Two peers with the same name or ODS code.
        public static let duplicatePeer = Code(rawValue: "duplicate-peer")
        /// A file the configuration names cannot be read.
        public static let unreadableReference = Code(rawValue: "unreadable-reference")
        /// A `credential:` reference without `$CREDENTIALS_DIRECTORY`.
        public static let credentialMissing = Code(rawValue: "credential-missing")
        /// A private key that is not a usable RSA key.
        public static let invalidKey = Code(rawValue: "invalid-key")
        /// Metrics on a non-loopback address without `metrics.allowNonLoopback`.
        public static let nonLoopbackListen = Code(rawValue: "non-loopback-listen")
        /// A `CARESYNC_…` environment variable that names no key.
        public static let unknownEnvironmentVariable = Code(rawValue: "unknown-environment-variable")
    }
}

/// A configuration that cannot be used, with every problem found (not just the first).
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Always `invalid-configuration`.
    public var code: String { "invalid-configuration" }
    /// Every problem, in the order of the keys.
    public let problems: [ConfigurationProblem]
    /// The configuration file, when one was read.
    public let file: String?

    /// An error listing `problems` found in `file`.
    public init(problems: [ConfigurationProblem], file: String? = nil) {
        self.problems = problems
        self.file = file
    }

    /// One line per problem.
    public var message: String {
        let header = "\(file ?? "the configuration") has \(problems.count) problem\(problems.count == 1 ? "" : "s")"
        return ([header] + problems.map { "  \($0)" }).joined(separator: "\n")
    }

    public var description: String { message }
}
