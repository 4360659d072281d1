/// The policy's rules for one resource type as a tree of element names, so that a merge finds the rule
/// for each element while it walks the resource, without building path strings. Immutable once built.
///
/// List items share their list's node: `CarePlan.activity.detail` is the child `detail` of the node
/// `activity`, whatever the item.
final class PolicyNode: Sendable {
    /// The rule written for exactly this path, if any.
    let rule: MergeRule?
    /// Children by element name.
    let children: [String: PolicyNode]
    /// Children written `name[x]`, by the prefix `name`: they match `nameTiming`, `namePeriod`, ….
    let choiceChildren: [(prefix: String, node: PolicyNode)]
    /// This element is a status checked by the always-on entered-in-error rule.
    let isSafetyStatus: Bool
    /// A node below this one is a safety status: this element is never taken as a whole without looking
    /// inside it.
    let guardsSafetyStatusBelow: Bool
    /// The first never-auto or status-machine rule below this node, if any: when both sides changed the
    /// record, this element is not taken as a whole without looking inside it.
    let recordGuardBelow: MergeRule?
    /// For a keyed-list rule: each key alternative as element paths split into names.
    let keyPaths: [[[String]]]

    /// An empty node (no rule, no children).
    convenience init() {
        self.init(PolicyNodeBuilder())
    }

    private init(_ builder: PolicyNodeBuilder) {
        rule = builder.rule
        children = builder.children.mapValues { PolicyNode($0) }
        choiceChildren = builder.choiceChildren.map { ($0.prefix, PolicyNode($0.node)) }
        isSafetyStatus = builder.isSafetyStatus
        guardsSafetyStatusBelow = builder.guardsSafetyStatusBelow
        recordGuardBelow = builder.recordGuardBelow
        keyPaths = builder.keyPaths
    }

    /// The child for element `name` (an exact child first, then a choice child).
    func child(_ name: String) -> PolicyNode? {
        if let exact = children[name] { return exact }
        for choice in choiceChildren where PolicyNode.matchesChoice(name, prefix: choice.prefix) {
            return choice.node
        }
        return nil
    }

    /// Whether `name` is a typed variant of the choice element `prefix[x]`: `prefix` then an upper-case letter.
    static func matchesChoice(_ name: String, prefix: String) -> Bool {
        guard name.hasPrefix(prefix) else { return false }
        let rest = name.utf8.dropFirst(prefix.utf8.count)
        guard let first = rest.first else { return false }
        return first >= UInt8(ascii: "A") && first <= UInt8(ascii: "Z")
    }

    /// One tree per resource type: the policy's rules plus the always-on safety statuses.
    static func trees(for rules: [MergeRule]) -> [String: PolicyNode] {
        var trees: [String: PolicyNodeBuilder] = [:]
        for rule in rules {
            let segments = rule.path.split(separator: ".").map(String.init)
            trees[segments[0], default: PolicyNodeBuilder()].insert(rule, at: segments.dropFirst())
        }
        for path in SafetyRules.enteredInErrorStatusPaths {
            let segments = path.split(separator: ".").map(String.init)
            trees[segments[0], default: PolicyNodeBuilder()].markSafetyStatus(at: segments.dropFirst())
        }
        for type in Array(trees.keys) { trees[type]?.computeSummaries() }
        return trees.mapValues { PolicyNode($0) }
    }

    /// The element paths strictly below this node (relative; list items are transparent) that hold a safety
    /// status, and those that hold a never-auto or status-machine rule, for the coarse check of a subtree
    /// that cannot be matched element by element.
    func guardedPaths() -> (safety: [[String]], record: [(path: [String], rule: MergeRule)]) {
        var safety: [[String]] = []
        var record: [(path: [String], rule: MergeRule)] = []
        for name in children.keys.sorted() {
            children[name]!.collectGuardedPaths(prefix: [name], safety: &safety, record: &record)
        }
        for choice in choiceChildren {
            choice.node.collectGuardedPaths(prefix: [choice.prefix + "[x]"], safety: &safety, record: &record)
        }
        return (safety, record)
    }

    private func collectGuardedPaths(prefix: [String], safety: inout [[String]], record: inout [(path: [String], rule: MergeRule)]) {
        if isSafetyStatus { safety.append(prefix) }
        if let rule {
            switch rule.strategy {
            case .neverAuto, .statusMachine: record.append((prefix, rule))
            default: break
            }
        }
        for name in children.keys.sorted() {
            children[name]!.collectGuardedPaths(prefix: prefix + [name], safety: &safety, record: &record)
        }
        for choice in choiceChildren {
            choice.node.collectGuardedPaths(prefix: prefix + [choice.prefix + "[x]"], safety: &safety, record: &record)
        }
    }
}

/// The mutable form of a ``PolicyNode`` while the policy is read.
private struct PolicyNodeBuilder {
    var rule: MergeRule?
    var children: [String: PolicyNodeBuilder] = [:]
    var choiceChildren: [(prefix: String, node: PolicyNodeBuilder)] = []
    var isSafetyStatus = false
    var guardsSafetyStatusBelow = false
    var recordGuardBelow: MergeRule?
    var keyPaths: [[[String]]] = []

    mutating func insert(_ rule: MergeRule, at path: ArraySlice<String>) {
        guard let name = path.first else {
            self.rule = rule
            if case .keyedList(let keys) = rule.strategy {
                keyPaths = keys.map { alternative in alternative.map { $0.split(separator: ".").map(String.init) } }
            }
            return
        }
        updateChild(name) { $0.insert(rule, at: path.dropFirst()) }
    }

    mutating func markSafetyStatus(at path: ArraySlice<String>) {
        guard let name = path.first else {
            isSafetyStatus = true
            return
        }
        updateChild(name) { $0.markSafetyStatus(at: path.dropFirst()) }
    }

    private mutating func updateChild(_ name: String, _ update: (inout PolicyNodeBuilder) -> Void) {
        if name.hasSuffix("[x]") {
            let prefix = String(name.dropLast(3))
            if let index = choiceChildren.firstIndex(where: { $0.prefix == prefix }) {
                update(&choiceChildren[index].node)
            } else {
                var node = PolicyNodeBuilder()
                update(&node)
                choiceChildren.append((prefix, node))
            }
        } else {
            update(&children[name, default: PolicyNodeBuilder()])
        }
    }

    mutating func computeSummaries() {
        guardsSafetyStatusBelow = false
        recordGuardBelow = nil
        for name in children.keys.sorted() {
            children[name]!.computeSummaries()
            absorb(children[name]!)
        }
        for index in choiceChildren.indices {
            choiceChildren[index].node.computeSummaries()
            absorb(choiceChildren[index].node)
        }
    }

    private mutating func absorb(_ child: PolicyNodeBuilder) {
        guardsSafetyStatusBelow = guardsSafetyStatusBelow || child.isSafetyStatus || child.guardsSafetyStatusBelow
        if recordGuardBelow == nil {
            switch child.rule?.strategy {
            case .neverAuto?, .statusMachine?: recordGuardBelow = child.rule
            default: recordGuardBelow = child.recordGuardBelow
            }
        }
    }
}
