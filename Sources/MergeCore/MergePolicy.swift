public import FHIRJSON
import FHIRModel

/// The merge policy: for each resource type and element path, the strategy that decides what happens when
/// both sides changed the element, and the hazard that rule controls (DESIGN §4).
///
/// Loaded from the bytes of a policy file (`Schemas/merge-policy.json` is the reviewed default, embedded
/// in the binary as ``MergePolicy/default``). Loading checks every rule and names the offending one.
public struct MergePolicy: Sendable {
    /// The version the policy file declares (`policyVersion`).
    public let version: String
    /// The rule for every element that no other rule covers (always `three-way`).
    public let defaultRule: MergeRule
    /// The rules in file order.
    public let rules: [MergeRule]

    /// The rules arranged by resource type and path, for lookups during a merge.
    let trees: [String: PolicyNode]

    /// Loads a policy from the UTF-8 JSON text of a policy file.
    public init(bytes: [UInt8]) throws(MergePolicyError) {
        let document: JSON
        do {
            document = try JSON.parse(bytes)
        } catch {
            throw MergePolicyError(.notJSON, "the policy is not valid JSON: \(error.description)")
        }
        try self.init(json: document)
    }

    /// Loads a policy from a parsed policy document.
    public init(json document: JSON) throws(MergePolicyError) {
        guard let object = document.objectValue else {
            throw MergePolicyError(.wrongType, "the policy must be a JSON object, found \(document.kindName)")
        }
        try PolicyReader.checkMembers(object, allowed: ["$schema", "policyVersion", "description", "defaultRule", "rules"], ruleID: nil, context: "the policy")
        guard let version = object["policyVersion"]?.stringValue, !version.isEmpty else {
            throw MergePolicyError(.missingField, "the policy has no policyVersion (a non-empty string)", field: "policyVersion")
        }
        guard let defaultJSON = object["defaultRule"] else {
            throw MergePolicyError(.missingField, "the policy has no defaultRule", field: "defaultRule")
        }
        let defaultRule = try PolicyReader.rule(defaultJSON, position: "defaultRule", isDefault: true)
        guard let rulesJSON = object["rules"] else {
            throw MergePolicyError(.missingField, "the policy has no rules list", field: "rules")
        }
        guard let ruleValues = rulesJSON.arrayValue else {
            throw MergePolicyError(.wrongType, "rules must be a list, found \(rulesJSON.kindName)", field: "rules")
        }
        var rules: [MergeRule] = []
        var seenIDs: Set<String> = [defaultRule.id]
        var seenPaths: [String: String] = [:]
        for (position, value) in ruleValues.enumerated() {
            let rule = try PolicyReader.rule(value, position: "rules[\(position)]", isDefault: false)
            guard seenIDs.insert(rule.id).inserted else {
                throw MergePolicyError(.duplicateRuleID, "rule id \"\(rule.id)\" is used twice", ruleID: rule.id, field: "id")
            }
            if let other = seenPaths[rule.path] {
                throw MergePolicyError(
                    .duplicatePath, "rules \"\(other)\" and \"\(rule.id)\" both cover \(rule.path)", ruleID: rule.id, field: "path")
            }
            seenPaths[rule.path] = rule.id
            rules.append(rule)
        }
        self.version = version
        self.defaultRule = defaultRule
        self.rules = rules
        self.trees = PolicyNode.trees(for: rules)
    }

    /// The reviewed default policy, `Schemas/merge-policy.json`, embedded in the binary at build time.
    public static let `default`: MergePolicy = {
        do {
            return try MergePolicy(bytes: defaultPolicyBytes)
        } catch {
            // The embedded file is part of the build and checked by the test suite, not user input.
            preconditionFailure("the embedded default merge policy does not load: \(error)")
        }
    }()

    /// The bytes of the embedded default policy file.
    public static var defaultPolicyBytes: [UInt8] { PackageResources.merge_policy_json }

    /// The rule with this id (the default rule included), if any.
    public func rule(id: String) -> MergeRule? {
        id == defaultRule.id ? defaultRule : rules.first { $0.id == id }
    }
}

/// One rule of the policy: which strategy applies at which path, and why.
public struct MergeRule: Sendable, Hashable {
    /// Stable identifier, named by every decision and conflict the rule makes.
    public let id: String
    /// `Type.element.element`, a choice element written `name[x]`; empty for the default rule.
    public let path: String
    /// What happens when both sides changed the element.
    public let strategy: MergeStrategy
    /// `three-way`/`authority` only: compare the element as one value, never combining parts of both sides.
    public let isAtomic: Bool
    /// The hazard the rule controls, as a sentence for a clinical safety officer.
    public let hazard: String
    /// Why the strategy fits, in a sentence or two.
    public let rationale: String

    /// Creates a rule; ``MergePolicy`` builds these from a policy file.
    public init(id: String, path: String, strategy: MergeStrategy, isAtomic: Bool = false, hazard: String, rationale: String) {
        self.id = id
        self.path = path
        self.strategy = strategy
        self.isAtomic = isAtomic
        self.hazard = hazard
        self.rationale = rationale
    }
}

/// The merge strategies of DESIGN §4.
public enum MergeStrategy: Sendable, Hashable {
    /// A change on one side wins; two different changes → conflict. Objects merge member by member
    /// unless the rule is atomic; lists compare as a whole.
    case threeWay
    /// Items matched by key (the first alternative whose element paths are all present in the item) and
    /// merged recursively; additions from both sides kept; removal on one side + edit on the other → conflict.
    case keyedList(keys: [[String]])
    /// Union of both sides' additions minus both sides' removals; items compared as whole values.
    case set
    /// Union of both sides; removals are not applied when both sides changed the list.
    case appendOnly
    /// Stages of a status, earliest first (statuses in one stage are peers): forward moves win; a backward
    /// move while the other side also edited the record, or two different moves, → conflict.
    case statusMachine(stages: [[String]])
    /// When both sides changed the element, the owning side's value is taken.
    case authority(owner: AuthorityOwner)
    /// When both sides changed the record, any change to this element → conflict.
    case neverAuto

    /// The strategy's name as written in the policy file.
    public var name: String {
        switch self {
        case .threeWay: "three-way"
        case .keyedList: "keyed-list"
        case .set: "set"
        case .appendOnly: "append-only"
        case .statusMachine: "status-machine"
        case .authority: "authority"
        case .neverAuto: "never-auto"
        }
    }

    /// Whether elements below a path governed by this strategy inherit it (those without a rule of their own).
    var isInherited: Bool {
        switch self {
        case .threeWay, .authority, .neverAuto: true
        case .keyedList, .set, .appendOnly, .statusMachine: false
        }
    }
}

/// The side that owns an element under an `authority` rule.
public enum AuthorityOwner: String, Sendable, Hashable, CaseIterable {
    /// The system the record came from (``MergeContext/origin``).
    case origin
    /// The hub: `ours`.
    case hub
    /// The provider: `theirs`.
    case provider
}

/// Why a policy file was rejected: a stable `code`, a sentence, the rule (`id`, or its position) and field.
public struct MergePolicyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, as a stable machine-readable code.
    public enum Code: String, Sendable, Hashable {
        case notJSON = "not-json"
        case wrongType = "wrong-type"
        case missingField = "missing-field"
        case unknownField = "unknown-field"
        case unknownStrategy = "unknown-strategy"
        case unknownResourceType = "unknown-resource-type"
        case badPath = "bad-path"
        case badRuleID = "bad-rule-id"
        case missingHazard = "missing-hazard"
        case duplicateRuleID = "duplicate-rule-id"
        case duplicatePath = "duplicate-path"
        case badKeys = "bad-keys"
        case badOrder = "bad-order"
        case badOwner = "bad-owner"
        case misplacedOption = "misplaced-option"
    }

    public let code: Code
    public let message: String
    /// The offending rule: its id, or `rules[N]` when it has no usable id.
    public let ruleID: String?
    /// The offending field of that rule or of the policy.
    public let field: String?

    init(_ code: Code, _ message: String, ruleID: String? = nil, field: String? = nil) {
        self.code = code
        self.message = message
        self.ruleID = ruleID
        self.field = field
    }

    public var description: String {
        var prefix = ""
        if let ruleID { prefix += "rule \(ruleID)" }
        if let field { prefix += prefix.isEmpty ? "field \(field)" : ", field \(field)" }
        return prefix.isEmpty ? "\(message) [\(code.rawValue)]" : "\(prefix): \(message) [\(code.rawValue)]"
    }
}

/// Reads and checks the rules of a policy document.
private enum PolicyReader {
    static let strategyNames = ["three-way", "keyed-list", "set", "append-only", "status-machine", "authority", "never-auto"]

    static func rule(_ value: JSON, position: String, isDefault: Bool) throws(MergePolicyError) -> MergeRule {
        guard let object = value.objectValue else {
            throw MergePolicyError(.wrongType, "a rule must be an object, found \(value.kindName)", ruleID: position)
        }
        guard let idValue = object["id"] else {
            throw MergePolicyError(.missingField, "the rule has no id", ruleID: position, field: "id")
        }
        guard let id = idValue.stringValue, isRuleID(id) else {
            throw MergePolicyError(
                .badRuleID, "a rule id is lower-case words joined by '-', e.g. careplan-status", ruleID: position, field: "id")
        }
        let allowed: Set<String> =
            isDefault
            ? ["id", "strategy", "hazard", "rationale"]
            : ["id", "path", "strategy", "hazard", "rationale", "keys", "order", "owner", "atomic"]
        try checkMembers(object, allowed: allowed, ruleID: id, context: "the rule")

        let path: String
        if isDefault {
            path = ""
        } else {
            guard let text = object["path"]?.stringValue else {
                throw MergePolicyError(.missingField, "the rule has no path (a string)", ruleID: id, field: "path")
            }
            try checkPath(text, ruleID: id)
            path = text

        }

        guard let hazard = object["hazard"]?.stringValue, hasText(hazard) else {
            throw MergePolicyError(
                .missingHazard, "every rule names the hazard it controls, as a sentence", ruleID: id, field: "hazard")
        }
        guard let rationale = object["rationale"]?.stringValue, hasText(rationale) else {
            throw MergePolicyError(.missingField, "the rule has no rationale (a sentence)", ruleID: id, field: "rationale")
        }

        guard let strategyName = object["strategy"]?.stringValue else {
            throw MergePolicyError(.missingField, "the rule has no strategy (a string)", ruleID: id, field: "strategy")
        }
        guard strategyNames.contains(strategyName) else {
            throw MergePolicyError(
                .unknownStrategy,
                "unknown strategy \"\(strategyName)\"; one of \(strategyNames.joined(separator: ", "))",
                ruleID: id, field: "strategy")
        }
        if isDefault && strategyName != "three-way" {
            throw MergePolicyError(.unknownStrategy, "the default rule's strategy is three-way", ruleID: id, field: "strategy")
        }

        let strategy: MergeStrategy
        switch strategyName {
        case "keyed-list": strategy = .keyedList(keys: try keys(object["keys"], ruleID: id))
        case "set": strategy = .set
        case "append-only": strategy = .appendOnly
        case "status-machine": strategy = .statusMachine(stages: try stages(object["order"], ruleID: id))
        case "authority": strategy = .authority(owner: try owner(object["owner"], ruleID: id))
        case "never-auto": strategy = .neverAuto
        default: strategy = .threeWay
        }
        if !isDefault, !path.contains("."), !strategy.isInherited {
            throw MergePolicyError(
                .badPath, "a rule for a whole resource (\(path)) must be three-way, authority or never-auto, not \(strategyName)",
                ruleID: id, field: "path")
        }
        for (field, strategyNeeding) in [("keys", "keyed-list"), ("order", "status-machine"), ("owner", "authority")]
        where object[field] != nil && strategyName != strategyNeeding {
            throw MergePolicyError(
                .misplacedOption, "\(field) belongs to a \(strategyNeeding) rule, not \(strategyName)", ruleID: id, field: field)
        }
        var isAtomic = false
        if let atomic = object["atomic"] {
            guard let flag = atomic.boolValue else {
                throw MergePolicyError(.wrongType, "atomic must be true or false", ruleID: id, field: "atomic")
            }
            guard strategyName == "three-way" || strategyName == "authority" else {
                throw MergePolicyError(
                    .misplacedOption, "atomic applies to three-way and authority rules, not \(strategyName)", ruleID: id, field: "atomic")
            }
            isAtomic = flag
        }
        return MergeRule(id: id, path: path, strategy: strategy, isAtomic: isAtomic, hazard: hazard, rationale: rationale)
    }

    static func checkMembers(_ object: JSONObject, allowed: Set<String>, ruleID: String?, context: String) throws(MergePolicyError) {
        for key in object.keys where !allowed.contains(key) {
            throw MergePolicyError(
                .unknownField, "\(context) has an unknown field \"\(key)\"; allowed: \(allowed.sorted().joined(separator: ", "))",
                ruleID: ruleID, field: key)
        }
    }

    static func checkPath(_ path: String, ruleID: String) throws(MergePolicyError) {
        let segments = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let typeName = segments.first, !typeName.isEmpty else {
            throw MergePolicyError(.badPath, "a path starts with a resource type, e.g. CarePlan.status", ruleID: ruleID, field: "path")
        }
        guard ResourceType(rawValue: typeName) != nil else {
            let known = ResourceType.allCases.map(\.rawValue).joined(separator: ", ")
            throw MergePolicyError(
                .unknownResourceType, "unknown resource type \"\(typeName)\"; one of \(known)", ruleID: ruleID, field: "path")
        }
        for segment in segments.dropFirst() where !isElementName(segment) {
            throw MergePolicyError(
                .badPath,
                "\"\(segment)\" in \(path) is not an element name (letters and digits starting lower-case, a choice written name[x])",
                ruleID: ruleID, field: "path")
        }
    }

    static func keys(_ value: JSON?, ruleID: String) throws(MergePolicyError) -> [[String]] {
        let problem = "keys is a non-empty list of alternatives, each a non-empty list of element paths, e.g. [[\"system\", \"value\"]]"
        guard let alternatives = value?.arrayValue, !alternatives.isEmpty else {
            throw MergePolicyError(.badKeys, problem, ruleID: ruleID, field: "keys")
        }
        var result: [[String]] = []
        for alternative in alternatives {
            guard let parts = alternative.arrayValue, !parts.isEmpty else {
                throw MergePolicyError(.badKeys, problem, ruleID: ruleID, field: "keys")
            }
            var paths: [String] = []
            for part in parts {
                guard let text = part.stringValue,
                    text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ isElementName(String($0)) })
                else {
                    throw MergePolicyError(
                        .badKeys, "key part \(part.text()) is not an element path such as detail.code", ruleID: ruleID, field: "keys")
                }
                paths.append(text)
            }
            result.append(paths)
        }
        return result
    }

    static func stages(_ value: JSON?, ruleID: String) throws(MergePolicyError) -> [[String]] {
        let problem = "order lists at least two stages, earliest first, each a non-empty list of status codes"
        guard let stageValues = value?.arrayValue, stageValues.count >= 2 else {
            throw MergePolicyError(.badOrder, problem, ruleID: ruleID, field: "order")
        }
        var stages: [[String]] = []
        var seen: Set<String> = []
        for stage in stageValues {
            guard let codes = stage.arrayValue, !codes.isEmpty else {
                throw MergePolicyError(.badOrder, problem, ruleID: ruleID, field: "order")
            }
            var names: [String] = []
            for code in codes {
                guard let name = code.stringValue, !name.isEmpty else {
                    throw MergePolicyError(.badOrder, problem, ruleID: ruleID, field: "order")
                }
                guard seen.insert(name).inserted else {
                    throw MergePolicyError(.badOrder, "status \"\(name)\" appears in two stages", ruleID: ruleID, field: "order")
                }
                names.append(name)
            }
            stages.append(names)
        }
        return stages
    }

    static func owner(_ value: JSON?, ruleID: String) throws(MergePolicyError) -> AuthorityOwner {
        guard let text = value?.stringValue, let owner = AuthorityOwner(rawValue: text) else {
            let names = AuthorityOwner.allCases.map(\.rawValue).joined(separator: ", ")
            throw MergePolicyError(.badOwner, "owner is one of \(names)", ruleID: ruleID, field: "owner")
        }
        return owner
    }

    /// `name` or `name[x]`: an ASCII letter (lower-case) then letters and digits.
    static func isElementName(_ segment: String) -> Bool {
        var bytes = Array(segment.utf8)
        if bytes.count > 3, bytes.suffix(3).elementsEqual("[x]".utf8) { bytes.removeLast(3) }
        guard let first = bytes.first, first >= UInt8(ascii: "a"), first <= UInt8(ascii: "z") else { return false }
        return bytes.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
        }
    }

    static func isRuleID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard let first = bytes.first, first >= UInt8(ascii: "a"), first <= UInt8(ascii: "z"), bytes.last != UInt8(ascii: "-") else {
            return false
        }
        var previousWasDash = false
        for byte in bytes {
            let isDash = byte == UInt8(ascii: "-")
            let isWordByte = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            guard isDash || isWordByte, !(isDash && previousWasDash) else { return false }
            previousWasDash = isDash
        }
        return true
    }

    static func hasText(_ text: String) -> Bool {
        text.unicodeScalars.contains { !$0.properties.isWhitespace }
    }
}
