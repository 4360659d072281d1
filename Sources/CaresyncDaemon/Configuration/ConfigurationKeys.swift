/// The shape of the configuration file: every key, what it holds, and where lists are. The YAML walker
/// checks files against it (unknown keys, types) and the loader derives the `CARESYNC_…` environment
/// variable names from it. `Schemas/config.schema.json` describes the same shape for other tools.
indirect enum KeyShape: Sendable {
    /// A mapping with exactly these keys, in the documented order.
    case object([(String, KeyShape)])
    /// A sequence of values of one shape.
    case list(KeyShape)
    /// A single value.
    case leaf(ValueKind)

    /// The child shape called `name` in an object.
    func child(_ name: String) -> KeyShape? {
        guard case .object(let children) = self else { return nil }
        return children.first { $0.0 == name }?.1
    }
}

/// What a leaf key holds.
enum ValueKind: Sendable {
    /// Text (YAML strings only: a bare number is refused, so `ods: 123` does not slip through).
    case string
    /// A whole number.
    case integer
    /// `true` or `false`.
    case boolean
    /// Seconds as a number, or text with a unit (`500ms`, `30s`, `5m`, `1h`).
    case duration
    /// A list of text values.
    case stringList
    /// A version such as `1.2`, written as text or as a number.
    case version

    /// How the kind is named in messages.
    var expectation: String {
        switch self {
        case .string: "text"
        case .integer: "a whole number"
        case .boolean: "true or false"
        case .duration: "a duration (seconds, or text such as 30s, 500ms, 5m)"
        case .stringList: "a list of text values"
        case .version: "a version such as 1.2"
        }
    }
}

/// One step of a key path: a mapping key or a list index.
enum KeyComponent: Sendable, Hashable {
    case key(String)
    case index(Int)
}

extension [KeyComponent] {
    /// `providers[1].baseURL`: how problems name a key.
    var displayPath: String {
        var text = ""
        for component in self {
            switch component {
            case .key(let name): text += text.isEmpty ? name : ".\(name)"
            case .index(let index): text += "[\(index)]"
            }
        }
        return text.isEmpty ? "<file>" : text
    }

    /// `providers.1.baseURL`: the swift-configuration key.
    var configKeyComponents: [String] {
        map {
            switch $0 {
            case .key(let name): name
            case .index(let index): String(index)
            }
        }
    }
}

enum ConfigurationKeys {
    static let auth: KeyShape = .object([
        ("type", .leaf(.string)),
        ("tokenFile", .leaf(.string)),
        ("tokenURL", .leaf(.string)),
        ("clientID", .leaf(.string)),
        ("privateKeyFile", .leaf(.string)),
        ("keyID", .leaf(.string)),
        ("scope", .leaf(.string)),
    ])

    static let tls: KeyShape = .object([
        ("caFile", .leaf(.string)),
        ("clientCert", .leaf(.string)),
        ("clientKey", .leaf(.string)),
        ("pinnedPublicKey", .leaf(.string)),
        ("minVersion", .leaf(.version)),
    ])

    static let hub: KeyShape = .object([
        ("name", .leaf(.string)),
        ("ods", .leaf(.string)),
        ("baseURL", .leaf(.string)),
        ("auth", auth),
        ("tls", tls),
    ])

    static let provider: KeyShape = .object([
        ("name", .leaf(.string)),
        ("ods", .leaf(.string)),
        ("baseURL", .leaf(.string)),
        ("mode", .leaf(.string)),
        ("scope", .leaf(.string)),
        ("auth", auth),
        ("tls", tls),
    ])

    /// The whole file.
    static let root: KeyShape = .object([
        ("state", .object([("path", .leaf(.string))])),
        (
            "sync",
            .object([
                ("interval", .leaf(.duration)),
                ("resourceTypes", .leaf(.stringList)),
                ("pageSize", .leaf(.integer)),
                ("clockSkewMargin", .leaf(.duration)),
            ])
        ),
        ("policy", .leaf(.string)),
        ("hub", hub),
        ("providers", .list(provider)),
        (
            "metrics",
            .object([
                ("enabled", .leaf(.boolean)),
                ("listen", .leaf(.string)),
                ("allowNonLoopback", .leaf(.boolean)),
            ])
        ),
        ("log", .object([("level", .leaf(.string))])),
    ])

    /// Every leaf key path, with lists expanded to `count(listPath)` items.
    static func leafPaths(count: ([KeyComponent]) -> Int) -> [[KeyComponent]] {
        var paths: [[KeyComponent]] = []
        func visit(_ shape: KeyShape, _ path: [KeyComponent]) {
            switch shape {
            case .leaf: paths.append(path)
            case .object(let children): for (name, child) in children { visit(child, path + [.key(name)]) }
            case .list(let item): for index in 0..<count(path) { visit(item, path + [.index(index)]) }
            }
        }
        visit(root, [])
        return paths
    }
}

/// The environment variable name swift-configuration's `EnvironmentVariablesProvider` reads for a key
/// under the `caresync` prefix: camelCase split at word boundaries, upper-cased, non-alphanumerics to `_`,
/// components joined by `_` (`hub.baseURL` → `CARESYNC_HUB_BASE_URL`).
enum EnvironmentName {
    static let prefix = "caresync"

    static func forKey(_ components: [String]) -> String {
        ([prefix] + components).map { component -> String in
            var text = ""
            var previous: Character?
            for character in component {
                if let previous, previous.isLowercase, character.isUppercase { text.append("_") }
                text.append(character)
                previous = character
            }
            return text.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
        }.joined(separator: "_")
    }
}
