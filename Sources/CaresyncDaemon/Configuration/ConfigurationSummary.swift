import CaresyncHTTP
import FHIRModel

/// A few lines describing a configuration for operators (`caresync check-config`): peers, sync
/// settings, where things live. Never a secret: authentication shows its type and where keys come from.
public enum ConfigurationSummary {
    /// The summary of `configuration` read from `file`.
    public static func lines(for configuration: CaresyncConfiguration, file: String) -> [String] {
        var rows: [[String]] = [["hub", configuration.hub.name, configuration.hub.ods, "read-write", configuration.hub.baseURL.text]]
        var details = [describe(configuration.hub)]
        for provider in configuration.providers {
            rows.append(["provider", provider.name, provider.ods, provider.mode.rawValue, provider.baseURL.text])
            details.append(describe(provider.peer) + "; fan-out \(provider.scope.rawValue)")
        }
        var lines = ["\(file): valid (\(configuration.providers.count + 1) peers)"]
        for (row, detail) in zip(table(rows), details) {
            lines.append("  " + row)
            lines.append("      " + detail)
        }
        let sync = configuration.sync
        lines.append(
            "sync: every \(DurationText.format(sync.interval)); \(sync.resourceTypes.map(\.rawValue).joined(separator: ", ")); "
                + "\(sync.pageSize) per page; clock skew margin \(DurationText.format(sync.clockSkewMargin))")
        let policy: String
        switch configuration.policy {
        case .embedded: policy = "embedded"
        case .file(let reference): policy = reference.description
        }
        let metrics = configuration.metrics.enabled ? "http://\(configuration.metrics.listen)/metrics" : "off"
        lines.append("state: \(configuration.state.path); policy: \(policy); metrics: \(metrics); log level: \(configuration.log.level)")
        return lines
    }

    static func describe(_ peer: PeerConfiguration) -> String {
        var auth = "auth \(peer.auth.typeName)"
        switch peer.auth {
        case .none, .mutualTLS: break
        case .bearer(let token): auth += " (token from \(token.origin))"
        case .oauth2ClientCredentials(let settings): auth += " (client \(settings.clientID), key from \(settings.privateKey.origin))"
        }
        guard peer.baseURL.scheme == "https" else { return auth + "; plain http (loopback)" }
        var tls = ["TLS >= \(peer.tls.minimumVersion.configurationValue)"]
        if peer.tls.caFile != nil { tls.append("own CA") }
        if peer.tls.clientCertificate != nil { tls.append("client certificate") }
        if peer.tls.pinnedPublicKey != nil { tls.append("pinned key") }
        return auth + "; " + tls.joined(separator: ", ")
    }

    static func table(_ rows: [[String]]) -> [String] {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  ")
        }
    }
}
