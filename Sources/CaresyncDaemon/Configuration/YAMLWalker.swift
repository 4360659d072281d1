import Configuration
import Yams

/// Walks a parsed YAML document against ``ConfigurationKeys/root``: reports unknown and duplicate keys and
/// values of the wrong type, each under its key path, and flattens what is valid into swift-configuration
/// values (`providers.1.baseURL` → `"https://…"`).
///
/// swift-configuration's own `YAMLSnapshot` accepts unknown keys silently and refuses lists of mappings
/// (`providers:`), so the file is walked here and handed to a `ConfigReader` as an `InMemoryProvider`.
struct YAMLWalker {
    /// Flattened values: scalars as their canonical text, lists as text arrays.
    private(set) var values: [AbsoluteConfigKey: ConfigValue] = [:]
    /// Item counts of lists, by key path.
    private(set) var listCounts: [[KeyComponent]: Int] = [:]
    /// What is wrong with the file.
    private(set) var problems: [ConfigurationProblem] = []
    /// Whether the text parsed as YAML (when not, ``problems`` holds the one parse error).
    private(set) var parsed = true
    /// The mappings present in the file (`hub`, `providers[0].auth`, …).
    private(set) var mappingPaths: Set<[KeyComponent]> = []

    /// Parses `text` and walks it.
    init(yaml text: String) {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            problems.append(Self.problem(from: error))
            parsed = false
            return
        }
        guard let root else { return }  // an empty file: every key takes its default
        walk(root, shape: ConfigurationKeys.root, path: [])
    }

    private mutating func walk(_ node: Node, shape: KeyShape, path: [KeyComponent]) {
        switch shape {
        case .object(let children):
            guard let mapping = node.mapping else {
                problem(path, .wrongType, "expected a mapping of keys, found \(Self.kindName(node))")
                return
            }
            mappingPaths.insert(path)
            var seen: Set<String> = []
            for (keyNode, valueNode) in mapping {
                guard let key = keyNode.scalar?.string else {
                    problem(path, .wrongType, "a key must be text")
                    continue
                }
                guard seen.insert(key).inserted else {
                    problem(path + [.key(key)], .duplicateKey, "the key appears twice")
                    continue
                }
                guard let childShape = children.first(where: { $0.0 == key })?.1 else {
                    let known = children.map(\.0)
                    var message = "unknown key"
                    if let suggestion = Self.closest(to: key, in: known) { message += " (did you mean \(suggestion)?)" }
                    message += "; allowed here: \(known.joined(separator: ", "))"
                    problem(path + [.key(key)], .unknownKey, message)
                    continue
                }
                walk(valueNode, shape: childShape, path: path + [.key(key)])
            }
        case .list(let itemShape):
            guard let sequence = node.sequence else {
                problem(path, .wrongType, "expected a list, found \(Self.kindName(node))")
                return
            }
            listCounts[path] = sequence.count
            for (index, item) in sequence.enumerated() {
                walk(item, shape: itemShape, path: path + [.index(index)])
            }
        case .leaf(let kind):
            if let content = Self.content(of: node, kind: kind) {
                values[AbsoluteConfigKey(path.configKeyComponents)] = ConfigValue(content, isSecret: false)
            } else {
                problem(path, .wrongType, "expected \(kind.expectation), found \(Self.kindName(node))")
            }
        }
    }

    /// The value of a leaf, or `nil` when the node has the wrong type.
    static func content(of node: Node, kind: ValueKind) -> ConfigContent? {
        if kind == .stringList {
            guard let sequence = node.sequence else { return nil }
            var items: [String] = []
            for item in sequence {
                guard let scalar = item.scalar, Self.tagName(item) == .str else { return nil }
                items.append(scalar.string)
            }
            return .stringArray(items)
        }
        guard let scalar = node.scalar else { return nil }
        let tag = Self.tagName(node)
        switch kind {
        case .string:
            return tag == .str ? .string(scalar.string) : nil
        case .integer:
            if tag == .int, let value = Int.construct(from: scalar) { return .string(String(value)) }
            if tag == .float, let value = Double.construct(from: scalar), value.rounded() == value, abs(value) < 1e15 {
                return .string(String(Int(value)))
            }
            return nil
        case .boolean:
            guard tag == .bool, let value = Bool.construct(from: scalar) else { return nil }
            return .string(value ? "true" : "false")
        case .duration:
            // Numbers stay numbers (seconds); text must carry a unit.
            if tag == .int, let value = Int.construct(from: scalar) { return .double(Double(value)) }
            if tag == .float, let value = Double.construct(from: scalar) { return .double(value) }
            return tag == .str ? .string(scalar.string) : nil
        case .version:
            if tag == .float, let value = Double.construct(from: scalar) { return .string(String(value)) }
            return tag == .str ? .string(scalar.string) : nil
        case .stringList:
            return nil
        }
    }

    private mutating func problem(_ path: [KeyComponent], _ code: ConfigurationProblem.Code, _ message: String) {
        problems.append(.init(keyPath: path.displayPath, code: code, message: message))
    }

    /// The resolved tag (`!!str`, `!!int`, …) of a node (a scalar's own tag stays implicit until the node
    /// resolves it).
    static func tagName(_ node: Node) -> Tag.Name {
        Tag.Name(rawValue: node.tag.rawValue)
    }

    static func kindName(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            switch tagName(node) {
            case .null: return "nothing (null)"
            case .bool: return "a boolean (\(scalar.string))"
            case .int, .float: return "a number (\(scalar.string))"
            case .timestamp: return "a date (\(scalar.string))"
            default: return "text"
            }
        }
    }

    /// A parse failure as a problem, without echoing the document (it may hold paths an operator
    /// considers private; never secrets, which live in files).
    static func problem(from error: any Error) -> ConfigurationProblem {
        guard let yamlError = error as? YamlError else {
            return .init(keyPath: "<file>", code: .syntax, message: "not valid YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let parts = [context?.text, problem, "line \(mark.line), column \(mark.column)"]
            let text = parts.compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ", ")
            return .init(keyPath: "<file>", code: .syntax, message: "not valid YAML: \(text)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return .init(
                keyPath: "<file>", code: .duplicateKey,
                message: "key \(duplicates.joined(separator: ", ")) appears twice in one mapping (line \(context.mark.line))")
        case .reader(let problem, _, _, _):
            return .init(keyPath: "<file>", code: .syntax, message: "not readable as YAML text: \(problem)")
        default:
            return .init(keyPath: "<file>", code: .syntax, message: "not valid YAML")
        }
    }

    /// A known key within edit distance 2 of `key`, for "did you mean".
    static func closest(to key: String, in known: [String]) -> String? {
        let candidates = known.map { ($0, editDistance(key.lowercased(), $0.lowercased())) }
        guard let best = candidates.min(by: { $0.1 < $1.1 }), best.1 <= 2 else { return nil }
        return best.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
