import FHIRModel

/// The rules a configuration value must keep beyond its types; the JSON Schema
/// (`Schemas/config.schema.json`) states the same rules for the file.
enum ConfigurationRules {
    /// The widest `sync.pageSize`.
    static let pageSizeRange = 1...1000

    static func problems(in configuration: CaresyncConfiguration) -> [ConfigurationProblem] {
        var problems: [ConfigurationProblem] = []
        problems += syncProblems(configuration.sync)
        problems += peerProblems(configuration.hub, at: "hub")
        for (index, provider) in configuration.providers.enumerated() {
            problems += peerProblems(provider.peer, at: "providers[\(index)]")
        }
        problems += providerCountProblems(configuration.providers.count)
        let paths = ["hub"] + configuration.providers.indices.map { "providers[\($0)]" }
        problems += uniquenessProblems(zip(paths, configuration.peers).map { ($0, $1.name, $1.ods) })
        problems += metricsProblems(configuration.metrics)
        return problems
    }

    static func providerCountProblems(_ count: Int) -> [ConfigurationProblem] {
        count == 0 ? [.init(keyPath: "providers", code: .missing, message: "at least one provider is required")] : []
    }

    static func metricsProblems(_ metrics: MetricsSettings) -> [ConfigurationProblem] {
        guard !metrics.allowNonLoopback && !metrics.listen.isLoopback else { return [] }
        return [
            .init(
                keyPath: "metrics.listen", code: .nonLoopbackListen,
                message: "\(metrics.listen) is not a loopback address; set metrics.allowNonLoopback: true to expose metrics beyond this machine"
            )
        ]
    }

    static func syncProblems(_ sync: SyncSettings) -> [ConfigurationProblem] {
        var problems: [ConfigurationProblem] = []
        if sync.interval <= .zero {
            problems.append(.init(keyPath: "sync.interval", code: .invalidValue, message: "the interval must be greater than zero"))
        }
        if sync.clockSkewMargin < .zero {
            problems.append(.init(keyPath: "sync.clockSkewMargin", code: .invalidValue, message: "the margin cannot be negative"))
        }
        if !pageSizeRange.contains(sync.pageSize) {
            problems.append(.init(keyPath: "sync.pageSize", code: .invalidValue, message: "the page size must be from 1 to 1000 (found \(sync.pageSize))"))
        }
        if sync.resourceTypes.isEmpty {
            problems.append(.init(keyPath: "sync.resourceTypes", code: .invalidValue, message: "at least one resource type is required"))
        }
        for type in sync.resourceTypes where !ResourceType.synchronised.contains(type) {
            problems.append(
                .init(
                    keyPath: "sync.resourceTypes", code: .invalidValue,
                    message: "\(type.rawValue) is not synchronised (allowed: \(ResourceType.synchronised.map(\.rawValue).joined(separator: ", ")))"
                ))
        }
        if Set(sync.resourceTypes).count != sync.resourceTypes.count {
            problems.append(.init(keyPath: "sync.resourceTypes", code: .invalidValue, message: "a resource type is listed twice"))
        }
        return problems
    }

    /// A peer name: a letter or digit, then letters, digits, '-' or '_' (at most 64).
    static func isPeerName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter || first.isNumber, name.count <= 64 else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// An ODS code: 3 to 10 upper-case letters and digits.
    static func isODSCode(_ code: String) -> Bool {
        (3...10).contains(code.count) && code.allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber) }
    }

    static func peerProblems(_ peer: PeerConfiguration, at path: String) -> [ConfigurationProblem] {
        nameProblems(peer.name, at: path) + odsProblems(peer.ods, at: path) + authProblems(peer.auth, tls: peer.tls, at: path)
            + tlsProblems(peer.tls, at: path)
    }

    static func nameProblems(_ name: String, at path: String) -> [ConfigurationProblem] {
        guard !isPeerName(name) else { return [] }
        return [
            .init(
                keyPath: "\(path).name", code: .invalidValue,
                message: "a peer name is 1-64 letters, digits, '-' or '_', starting with a letter or digit")
        ]
    }

    static func odsProblems(_ ods: String, at path: String) -> [ConfigurationProblem] {
        guard !isODSCode(ods) else { return [] }
        return [.init(keyPath: "\(path).ods", code: .invalidValue, message: "an ODS code is 3-10 upper-case letters and digits (found \"\(ods)\")")]
    }

    static func authProblems(_ auth: AuthConfiguration, tls: TLSSettings, at path: String) -> [ConfigurationProblem] {
        var problems: [ConfigurationProblem] = []
        switch auth {
        case .none, .bearer:
            break
        case .mutualTLS:
            if tls.clientCertificate == nil || tls.clientKey == nil {
                problems.append(.init(keyPath: "\(path).tls", code: .missing, message: "auth type mtls needs tls.clientCert and tls.clientKey"))
            }
        case .oauth2ClientCredentials(let settings):
            if settings.clientID.isEmpty {
                problems.append(.init(keyPath: "\(path).auth.clientID", code: .invalidValue, message: "the client id is empty"))
            }
            if settings.keyID == "" {
                problems.append(.init(keyPath: "\(path).auth.keyID", code: .invalidValue, message: "the key id is empty"))
            }
        }
        return problems
    }

    static func tlsProblems(_ tls: TLSSettings, at path: String) -> [ConfigurationProblem] {
        guard (tls.clientCertificate == nil) != (tls.clientKey == nil) else { return [] }
        let missing = tls.clientCertificate == nil ? "clientCert" : "clientKey"
        return [.init(keyPath: "\(path).tls.\(missing)", code: .missing, message: "tls.clientCert and tls.clientKey go together")]
    }

    /// Names and ODS codes are unique across the hub and the providers; `nil` marks a value that could
    /// not be read (already reported).
    static func uniquenessProblems(_ peers: [(path: String, name: String?, ods: String?)]) -> [ConfigurationProblem] {
        var problems: [ConfigurationProblem] = []
        var firstWithName: [String: String] = [:]
        var firstWithODS: [String: String] = [:]
        for (path, name, ods) in peers {
            if let name {
                if let earlier = firstWithName[name] {
                    problems.append(.init(keyPath: "\(path).name", code: .duplicatePeer, message: "\"\(name)\" is already the name of \(earlier)"))
                } else {
                    firstWithName[name] = path
                }
            }
            if let ods {
                if let earlier = firstWithODS[ods] {
                    problems.append(.init(keyPath: "\(path).ods", code: .duplicatePeer, message: "\(ods) is already the ODS code of \(earlier)"))
                } else {
                    firstWithODS[ods] = path
                }
            }
        }
        return problems
    }
}
