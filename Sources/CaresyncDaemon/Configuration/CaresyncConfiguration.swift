public import CaresyncHTTP
public import FHIRModel
public import Logging

/// The daemon's configuration (DESIGN §6): where state lives, how often and what to sync, the hub and the
/// providers, metrics and logging.
///
/// Build one in code (`caresync sandbox` does) or load one with ``ConfigurationLoader``; either way
/// ``problems()`` lists what is wrong with it, each problem under its key path.
public struct CaresyncConfiguration: Sendable, Equatable {
    /// `state.*`
    public var state: StateSettings
    /// `sync.*`
    public var sync: SyncSettings
    /// `policy`: the merge policy file, or the embedded one.
    public var policy: PolicySource
    /// `hub`: the ICB shared care record.
    public var hub: PeerConfiguration
    /// `providers[]`: the provider systems.
    public var providers: [ProviderConfiguration]
    /// `metrics.*`
    public var metrics: MetricsSettings
    /// `log.*`
    public var log: LogSettings

    /// A configuration from values; everything but the peers has a default.
    public init(
        state: StateSettings = StateSettings(),
        sync: SyncSettings = SyncSettings(),
        policy: PolicySource = .embedded,
        hub: PeerConfiguration,
        providers: [ProviderConfiguration],
        metrics: MetricsSettings = MetricsSettings(),
        log: LogSettings = LogSettings()
    ) {
        self.state = state
        self.sync = sync
        self.policy = policy
        self.hub = hub
        self.providers = providers
        self.metrics = metrics
        self.log = log
    }

    /// Every peer, the hub first.
    public var peers: [PeerConfiguration] { [hub] + providers.map(\.peer) }

    /// The peer called `name` (the hub or a provider).
    public func peer(named name: String) -> PeerConfiguration? {
        peers.first { $0.name == name }
    }

    /// The provider called `name`.
    public func provider(named name: String) -> ProviderConfiguration? {
        providers.first { $0.name == name }
    }

    /// What is wrong with this configuration beyond the type of each value: names and ODS codes,
    /// ranges, peer uniqueness, authentication and TLS combinations, the metrics address.
    public func problems() -> [ConfigurationProblem] {
        ConfigurationRules.problems(in: self)
    }

    /// This configuration, or a ``ConfigurationError`` listing every problem.
    public func validated() throws(ConfigurationError) -> CaresyncConfiguration {
        let problems = problems()
        guard problems.isEmpty else { throw ConfigurationError(problems: problems) }
        return self
    }
}

/// `state.*`: where the SQLite state database and its lock file live.
public struct StateSettings: Sendable, Equatable {
    /// `state.path`: the state directory.
    public var path: String

    /// The default directory: `$STATE_DIRECTORY` (set by systemd's `StateDirectory=`), else
    /// `/var/lib/caresync`.
    public static func defaultPath(environment: [String: String]) -> String {
        if let directories = environment["STATE_DIRECTORY"],
            let first = directories.split(separator: ":").first, !first.isEmpty
        {
            return String(first)
        }
        return "/var/lib/caresync"
    }

    /// State in `path`.
    public init(path: String = "/var/lib/caresync") {
        self.path = path
    }
}

/// `sync.*`: the sync cycle.
public struct SyncSettings: Sendable, Equatable {
    /// `sync.interval`: time between sync cycles.
    public var interval: Duration
    /// `sync.resourceTypes`: the types to sync, in order.
    public var resourceTypes: [ResourceType]
    /// `sync.pageSize`: `_count` of each search page (1–1000).
    public var pageSize: Int
    /// `sync.clockSkewMargin`: how far before the cursor each pull starts (`ge cursor − margin`).
    public var clockSkewMargin: Duration

    /// Sync settings; the defaults are a 30 s interval, every synchronised type, 100 per page and a 5 s margin.
    public init(
        interval: Duration = .seconds(30),
        resourceTypes: [ResourceType] = ResourceType.synchronised,
        pageSize: Int = 100,
        clockSkewMargin: Duration = .seconds(5)
    ) {
        self.interval = interval
        self.resourceTypes = resourceTypes
        self.pageSize = pageSize
        self.clockSkewMargin = clockSkewMargin
    }
}

/// `policy`: which merge policy the merge core runs.
public enum PolicySource: Sendable, Equatable {
    /// The policy compiled into the binary (`Schemas/merge-policy.json` at build time).
    case embedded
    /// A policy file reviewed locally.
    case file(FileReference)
}

/// How to reach one peer: its names, base URL, authentication and TLS settings.
public struct PeerConfiguration: Sendable, Equatable {
    /// `name`: a short name used in the CLI, logs and metric labels.
    public var name: String
    /// `ods`: the NHS organisation (ODS) code; mints `urn:caresync:<ODS>:<type>` identifiers.
    public var ods: String
    /// `baseURL`: the FHIR base.
    public var baseURL: PeerURL
    /// `auth`
    public var auth: AuthConfiguration
    /// `tls`
    public var tls: TLSSettings

    /// A peer; auth defaults to `none` and TLS to the system CA store, TLS 1.2 or later.
    public init(name: String, ods: String, baseURL: PeerURL, auth: AuthConfiguration = .none, tls: TLSSettings = TLSSettings()) {
        self.name = name
        self.ods = ods
        self.baseURL = baseURL
        self.auth = auth
        self.tls = tls
    }
}

/// A provider: a peer plus whether caresync may write to it and which hub changes it receives.
@dynamicMemberLookup
public struct ProviderConfiguration: Sendable, Equatable {
    /// How to reach the provider.
    public var peer: PeerConfiguration
    /// `mode`: whether merged changes are pushed back to the provider.
    public var mode: ProviderMode
    /// `scope`: which hub changes fan out to this provider.
    public var scope: FanOutScope

    /// A provider reached as `peer`; fan-out defaults to the patients it holds.
    public init(peer: PeerConfiguration, mode: ProviderMode, scope: FanOutScope = .heldPatients) {
        self.peer = peer
        self.mode = mode
        self.scope = scope
    }

    /// The peer's properties (`provider.name`, `provider.baseURL`, …).
    public subscript<Value>(dynamicMember keyPath: KeyPath<PeerConfiguration, Value>) -> Value {
        peer[keyPath: keyPath]
    }
}

/// `providers[].mode`
public enum ProviderMode: String, Sendable, Equatable, CaseIterable {
    /// Merged changes are written back to the provider.
    case readWrite = "read-write"
    /// The provider is only read; nothing is ever written to it.
    case readOnly = "read-only"
}

/// `providers[].scope`: which changes made at the hub by others flow to a read-write provider.
public enum FanOutScope: String, Sendable, Equatable, CaseIterable {
    /// Changes for patients the provider already holds records for (the default).
    case heldPatients = "held-patients"
    /// Every change at the hub.
    case allPatients = "all-patients"
    /// None: the provider only receives merges of records it sent.
    case none = "none"
}

/// `auth`: how caresync authenticates to a peer.
public enum AuthConfiguration: Sendable, Equatable {
    /// No authentication (a loopback test store, or a peer that relies on network controls).
    case none
    /// A bearer token read from a file (`tokenFile`), re-read on reload.
    case bearer(token: SecretValue)
    /// OAuth2 client credentials with a signed JWT assertion (private_key_jwt, RS512).
    case oauth2ClientCredentials(OAuth2ClientCredentialsSettings)
    /// The TLS client certificate (`tls.clientCert` / `tls.clientKey`) is the credential.
    case mutualTLS

    /// The `auth.type` value.
    public var typeName: String {
        switch self {
        case .none: "none"
        case .bearer: "bearer"
        case .oauth2ClientCredentials: "oauth2-client-credentials"
        case .mutualTLS: "mtls"
        }
    }
}

/// `auth` with `type: oauth2-client-credentials`.
public struct OAuth2ClientCredentialsSettings: Sendable, Equatable {
    /// `tokenURL`: the token endpoint, also the JWT `aud`.
    public var tokenURL: PeerURL
    /// `clientID`: the JWT `iss` and `sub`.
    public var clientID: String
    /// `privateKeyFile`: the RSA private key (PEM) that signs the assertion.
    public var privateKey: SecretValue
    /// `keyID`: the JWT header `kid`, when the authorisation server wants one.
    public var keyID: String?
    /// `scope`: the OAuth2 scope requested, if any.
    public var scope: String?

    /// OAuth2 client-credentials settings.
    public init(tokenURL: PeerURL, clientID: String, privateKey: SecretValue, keyID: String? = nil, scope: String? = nil) {
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.privateKey = privateKey
        self.keyID = keyID
        self.scope = scope
    }
}

/// `tls`: certificate verification is always on; these settings add to it, never relax it.
public struct TLSSettings: Sendable, Equatable {
    /// `caFile`: a CA bundle to verify the peer with, instead of the system's.
    public var caFile: FileReference?
    /// `clientCert`: the client certificate (PEM) for mutual TLS.
    public var clientCertificate: FileReference?
    /// `clientKey`: the client certificate's private key (PEM).
    public var clientKey: FileReference?
    /// `pinnedPublicKey`: the peer's public key pinned, as libcurl's `CURLOPT_PINNEDPUBLICKEY` takes it.
    public var pinnedPublicKey: PinnedPublicKey?
    /// `minVersion`: the lowest TLS version accepted (`"1.2"` or `"1.3"`; nothing lower exists).
    public var minimumVersion: TLSVersion

    /// TLS settings; the defaults trust the system CA store and accept TLS 1.2 and later.
    public init(
        caFile: FileReference? = nil,
        clientCertificate: FileReference? = nil,
        clientKey: FileReference? = nil,
        pinnedPublicKey: PinnedPublicKey? = nil,
        minimumVersion: TLSVersion = .v1_2
    ) {
        self.caFile = caFile
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.pinnedPublicKey = pinnedPublicKey
        self.minimumVersion = minimumVersion
    }

    /// The transport's settings for requests to this peer.
    public var httpConfiguration: TLSConfiguration {
        TLSConfiguration(
            caFile: caFile?.path, clientCertificateFile: clientCertificate?.path, clientKeyFile: clientKey?.path,
            pinnedPublicKey: pinnedPublicKey?.curlValue, minimumVersion: minimumVersion)
    }
}

extension TLSVersion {
    /// The version as the configuration writes it: `1.2`, `1.3`.
    public var configurationValue: String {
        switch self {
        case .v1_2: "1.2"
        case .v1_3: "1.3"
        }
    }

    /// The version written `text` in the configuration.
    public init?(configurationValue text: String) {
        guard let version = TLSVersion.allCases.first(where: { $0.configurationValue == text }) else { return nil }
        self = version
    }
}

/// A pinned public key: `sha256//<base64>` hashes (`;`-separated) or a PEM/DER public key file.
public enum PinnedPublicKey: Sendable, Equatable {
    /// One or more base64 SHA-256 hashes of the peer's SubjectPublicKeyInfo.
    case sha256(hashes: [String])
    /// A public key file.
    case file(FileReference)

    /// The value for libcurl's `CURLOPT_PINNEDPUBLICKEY`.
    public var curlValue: String {
        switch self {
        case .sha256(let hashes): hashes.map { "sha256//" + $0 }.joined(separator: ";")
        case .file(let reference): reference.path
        }
    }
}

/// `metrics.*`: the Prometheus endpoint.
public struct MetricsSettings: Sendable, Equatable {
    /// `metrics.enabled`
    public var enabled: Bool
    /// `metrics.listen`: `host:port`; loopback unless `allowNonLoopback`.
    public var listen: ListenAddress
    /// `metrics.allowNonLoopback`: the explicit opt-in to expose metrics beyond this machine.
    public var allowNonLoopback: Bool

    /// The default address, `127.0.0.1:9464`.
    public static let defaultListen = ListenAddress(host: "127.0.0.1", port: 9464)

    /// Metrics settings; the defaults serve on 127.0.0.1:9464.
    public init(enabled: Bool = true, listen: ListenAddress = MetricsSettings.defaultListen, allowNonLoopback: Bool = false) {
        self.enabled = enabled
        self.listen = listen
        self.allowNonLoopback = allowNonLoopback
    }
}

/// `log.*`
public struct LogSettings: Sendable, Equatable {
    /// `log.level`: trace, debug, info, notice, warning, error or critical.
    public var level: Logger.Level

    /// Logging at `level`.
    public init(level: Logger.Level = .info) {
        self.level = level
    }
}
