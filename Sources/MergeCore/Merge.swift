public import FHIRJSON
import FHIRModel

/// Merges two concurrent versions of one FHIR resource against their common ancestor (DESIGN §3, §4).
///
/// - Parameters:
///   - base: the last version synchronised between the two sides; `nil` for a two-way merge, where
///     everything that differs is a conflict unless a rule says otherwise.
///   - ours: the hub's current version; `nil` when absent or deleted.
///   - theirs: the provider's new version; `nil` when absent or deleted.
///   - policy: the merge policy (``MergePolicy/default`` unless configured).
///   - context: what else the rules need to know (the record's origin for `authority` rules).
///
/// The always-on safety rules run first and regardless of the policy: a different subject NHS number
/// between any two present sides is refused (no result); a deletion against an edit is a conflict; a
/// status that is `entered-in-error` on one side only is a conflict. A conflicting path keeps `ours` in the
/// result while the rest of the record merges. Values equal after canonicalisation are never a conflict.
/// Server-managed elements (``SafetyRules/serverManagedElements``) are not merged: the result carries
/// ours' values. Every automatic decision names the rule that made it.
public func merge(
    base: JSON?, ours: JSON?, theirs: JSON?, policy: MergePolicy, context: MergeContext = MergeContext()
) -> MergeOutcome {
    merge(base: base, ours: ours, theirs: theirs, policy: policy, context: context, choices: [:])
}

func merge(
    base: JSON?, ours: JSON?, theirs: JSON?, policy: MergePolicy, context: MergeContext, choices: [String: ConflictChoice]
) -> MergeOutcome {
    // The sides must be resources of one supported type, of one patient.
    var typeName: String?
    var present: [(name: String, resource: JSON)] = []
    for (name, side) in [("base", base), ("ours", ours), ("theirs", theirs)] {
        guard let side else { continue }
        guard let sideType = side["resourceType"]?.stringValue, side.objectValue != nil else {
            return .refusal(MergeError(.notAResource, "\(name) is not a FHIR resource (a JSON object with a resourceType)", rule: nil))
        }
        if let typeName, typeName != sideType {
            return .refusal(
                MergeError(.resourceTypeMismatch, "\(name) is a \(sideType) but \(present[0].name) is a \(typeName)", rule: nil))
        }
        typeName = sideType
        present.append((name, side))
    }
    guard let typeName else {
        return MergeOutcome(status: .merged, result: nil, decisions: [], conflicts: [], errors: [])
    }
    guard let type = ResourceType(rawValue: typeName) else {
        return .refusal(
            MergeError(
                .unsupportedResourceType, "\(typeName) is not a resource type caresync merges, so its patient cannot be checked",
                rule: SafetyRules.wrongPatient.id))
    }
    if let refusal = SafetyRules.patientRefusal(present, type: type) {
        return .refusal(refusal)
    }

    var merger = Merger(policy: policy, context: context, typeName: typeName, twoWay: base == nil, choices: choices)
    let result = merger.mergeResource(base: base?.objectValue, ours: ours?.objectValue, theirs: theirs?.objectValue)
    return MergeOutcome(
        status: merger.conflicts.isEmpty ? .merged : .conflict,
        result: result,
        decisions: merger.decisions,
        conflicts: merger.conflicts,
        errors: [])
}

/// Which version an operator takes at a conflicting path when resolving a conflict.
public enum ConflictChoice: String, Sendable, Hashable, CaseIterable {
    /// The common ancestor's value.
    case base
    /// The hub's value (what the merge keeps while the conflict is open).
    case ours
    /// The provider's value.
    case theirs
}

/// The record an operator's resolution of a conflict makes: the merge of the three versions exactly as
/// ``merge(base:ours:theirs:policy:context:)`` makes it, except that each conflicting path named in
/// `choices` takes the chosen version's value there (a removal when that version has none). Conflicting
/// paths without a choice keep ours, as the merge does. The outcome still lists every conflict the merge
/// found (so a caller can check that its choices name them), and a refusal stays a refusal.
public func resolve(
    base: JSON?, ours: JSON?, theirs: JSON?, policy: MergePolicy, context: MergeContext = MergeContext(),
    choices: [String: ConflictChoice]
) -> MergeOutcome {
    merge(base: base, ours: ours, theirs: theirs, policy: policy, context: context, choices: choices)
}

extension MergeOutcome {
    static func refusal(_ error: MergeError) -> MergeOutcome {
        MergeOutcome(status: .refused, result: nil, decisions: [], conflicts: [], errors: [error])
    }
}

/// The merge walk: one instance per merge, collecting decisions and conflicts as it goes.
struct Merger {
    let policy: MergePolicy
    let context: MergeContext
    let typeName: String
    /// No base version: nothing tells which side changed what.
    let twoWay: Bool
    /// Both sides changed the record's content (server-managed elements aside): arms never-auto and the
    /// backward-move check of status-machine.
    var changedOnBothSides = true
    /// The current path below the resource: one segment per element or list item, rendered only when a
    /// decision or conflict is recorded.
    var path: [PathSegment] = []
    var decisions: [MergeDecision] = []
    var conflicts: [MergeConflict] = []
    /// An operator's choices at conflicting paths (``resolve(base:ours:theirs:policy:context:choices:)``);
    /// empty for an automatic merge, where every conflicting path keeps ours.
    let choices: [String: ConflictChoice]

    init(policy: MergePolicy, context: MergeContext, typeName: String, twoWay: Bool, choices: [String: ConflictChoice] = [:]) {
        self.policy = policy
        self.context = context
        self.typeName = typeName
        self.twoWay = twoWay
        self.choices = choices
    }

    /// `CarePlan.activity[act-1].detail.status`.
    var renderedPath: String {
        var text = typeName
        for segment in path {
            switch segment {
            case .member(let name): text += "." + name
            case .item(let key): text += "[" + Merger.render(key) + "]"
            case .value(let value): text += "[" + Merger.render(value) + "]"
            }
        }
        return text
    }

    // MARK: Recording

    mutating func decide(_ took: MergeDecision.Took, _ rule: String, _ explanation: String, discarded: JSON? = nil) {
        decisions.append(MergeDecision(path: renderedPath, rule: rule, took: took, explanation: explanation, discarded: discarded))
    }

    /// Records a conflict and returns the value the result keeps at its path: ours, or the version an
    /// operator chose there.
    mutating func conflict(_ rule: MergeRule, _ message: String, _ b: JSON?, _ o: JSON?, _ t: JSON?) -> JSON? {
        held(rule.id, rule.hazard, message, b, o, t)
    }

    /// Records a conflict of a safety rule and returns the value the result keeps at its path.
    mutating func conflict(_ rule: SafetyRule, _ message: String, _ b: JSON?, _ o: JSON?, _ t: JSON?) -> JSON? {
        held(rule.id, rule.hazard, message, b, o, t)
    }

    private mutating func held(_ rule: String, _ hazard: String, _ message: String, _ b: JSON?, _ o: JSON?, _ t: JSON?) -> JSON? {
        let path = renderedPath
        conflicts.append(MergeConflict(path: path, rule: rule, hazard: hazard, message: message, base: b, ours: o, theirs: t))
        switch choices[path] {
        case nil, .ours?: return o
        case .theirs?: return t
        case .base?: return b
        }
    }

    // MARK: The resource

    /// Merges the resource as a whole: presence first (create, delete, delete against edit), then content.
    mutating func mergeResource(base b: JSONObject?, ours o: JSONObject?, theirs t: JSONObject?) -> JSON? {
        switch (o, t) {
        case (nil, nil):
            if b != nil { decide(.both, SafetyRules.deleteVersusEdit.id, "deleted on both sides") }
            return nil
        case (nil, let t?):
            guard let b else {
                decide(.theirs, policy.defaultRule.id, "created by theirs")
                return .object(t)
            }
            if Merger.contentEqual(t, b) {
                decide(.ours, SafetyRules.deleteVersusEdit.id, "deleted by ours; theirs made no change")
                return nil
            }
            return conflict(SafetyRules.deleteVersusEdit, "deleted by ours but changed by theirs", .object(b), nil, .object(t))
        case (let o?, nil):
            guard let b else {
                decide(.ours, policy.defaultRule.id, "created by ours")
                return .object(o)
            }
            if Merger.contentEqual(o, b) {
                decide(.theirs, SafetyRules.deleteVersusEdit.id, "deleted by theirs; ours made no change")
                return nil
            }
            return conflict(SafetyRules.deleteVersusEdit, "deleted by theirs but changed by ours", .object(b), .object(o), nil)
        case (let o?, let t?):
            var primaryIsTheirs = false
            if let b {
                primaryIsTheirs = Merger.contentEqual(o, b)
                changedOnBothSides = !primaryIsTheirs && !Merger.contentEqual(t, b)
            }
            let root = policy.trees[typeName]
            let rootRule = root?.rule ?? policy.defaultRule
            return .object(
                mergeObject(b, o, t, node: root, inherited: rootRule, primaryIsTheirs: primaryIsTheirs, isResourceRoot: true))
        }
    }

    /// Whether two versions have the same content, server-managed elements aside.
    static func contentEqual(_ a: JSONObject, _ b: JSONObject) -> Bool {
        guard metaEqual(a["meta"], b["meta"]) else { return false }
        var compared = 0
        for (position, member) in a.members.enumerated() where member.key != "id" && member.key != "meta" {
            compared += 1
            guard Merger.lookup(member.key, in: b, at: position) == member.value else { return false }
        }
        return compared == b.members.count { $0.key != "id" && $0.key != "meta" }
    }

    private static func metaEqual(_ a: JSON?, _ b: JSON?) -> Bool {
        func content(_ meta: JSON?) -> JSON? {
            guard let object = meta?.objectValue else { return meta }
            return metaWithoutServerManaged(object)
        }
        return content(a) == content(b)
    }

    /// The member `key` of `object`, looked for first at `position` (versions of one record usually keep
    /// their members in the same order), then anywhere.
    static func lookup(_ key: String, in object: JSONObject, at position: Int) -> JSON? {
        let members = object.members
        if position < members.count && members[position].key == key { return members[position].value }
        return object[key]
    }

    static func metaWithoutServerManaged(_ meta: JSONObject) -> JSON? {
        var copy = meta
        copy["versionId"] = nil
        copy["lastUpdated"] = nil
        guard !copy.isEmpty else { return nil }
        return .object(copy)
    }

    // MARK: Elements

    /// Merges one element. `rule` governs it; `inherited` is what its children without a rule of their
    /// own inherit from above it.
    mutating func mergeNode(_ b: JSON?, _ o: JSON?, _ t: JSON?, node: PolicyNode?, rule: MergeRule, inherited: MergeRule) -> JSON? {
        if o == t {
            if !twoWay && o != b {
                decide(.both, rule.id, o == nil ? "removed on both sides" : "the same change was made on both sides")
            }
            return o
        }
        if let node, node.isSafetyStatus, o != nil, t != nil, SafetyRules.isEnteredInError(o) != SafetyRules.isEnteredInError(t) {
            let side = SafetyRules.isEnteredInError(o) ? "ours" : "theirs"
            return conflict(SafetyRules.enteredInError, "entered-in-error on \(side) only", b, o, t)
        }
        let childInherited = rule.strategy.isInherited ? rule : inherited
        if !twoWay, o == b || t == b {
            let side: MergeSide = o == b ? .theirs : .ours
            return mergeOneSided(b, o, t, changedSide: side, node: node, rule: rule, inherited: childInherited)
        }
        return mergeBothChanged(b, o, t, node: node, rule: rule, inherited: childInherited)
    }

    /// Only `changedSide` changed the element since base.
    mutating func mergeOneSided(
        _ b: JSON?, _ o: JSON?, _ t: JSON?, changedSide: MergeSide, node: PolicyNode?, rule: MergeRule, inherited: MergeRule
    ) -> JSON? {
        let changed = changedSide == .theirs ? t : o
        if changedOnBothSides {
            switch rule.strategy {
            case .neverAuto:
                return conflict(rule, "changed by \(changedSide.rawValue) while both sides edited the record; never merged automatically", b, o, t)
            case .statusMachine(let stages):
                if !StatusOrder.isForward(from: b, to: changed, stages: stages) {
                    let move = StatusOrder.describe(from: b, to: changed)
                    return conflict(rule, "\(move) by \(changedSide.rawValue) is not a forward move, and both sides edited the record", b, o, t)
                }
            default:
                break
            }
        }
        let mustLookInside = node.map { $0.guardsSafetyStatusBelow || (changedOnBothSides && $0.recordGuardBelow != nil) } ?? false
        if mustLookInside, let node {
            if case .keyedList = rule.strategy, Merger.isListOrAbsent(b), Merger.isListOrAbsent(o), Merger.isListOrAbsent(t) {
                return mergeKeyedList(b, o, t, oneSided: changedSide, node: node, rule: rule, inherited: inherited)
            }
            if rule.strategy.isInherited, !rule.isAtomic, Merger.isObjectOrAbsent(b), Merger.isObjectOrAbsent(o), Merger.isObjectOrAbsent(t) {
                let merged = mergeObject(
                    b?.objectValue, o?.objectValue ?? JSONObject(), t?.objectValue ?? JSONObject(), node: node, inherited: inherited,
                    primaryIsTheirs: changedSide == .theirs, isResourceRoot: false)
                guard !merged.isEmpty else { return nil }
                return .object(merged)
            }
            if let held = guardedSubtreeConflict(b, o, t, node: node, reason: "it cannot be matched element by element") {
                return held.value
            }
        }
        decide(changedSide == .theirs ? .theirs : .ours, rule.id, Merger.changeDescription(b, changed, by: changedSide))
        return changed
    }

    /// Both sides changed the element, differently (or there is no base and the sides differ).
    mutating func mergeBothChanged(_ b: JSON?, _ o: JSON?, _ t: JSON?, node: PolicyNode?, rule: MergeRule, inherited: MergeRule) -> JSON? {
        let listShaped = Merger.isListOrAbsent(b) && Merger.isListOrAbsent(o) && Merger.isListOrAbsent(t)
        let objectsInside = !rule.isAtomic && o?.objectValue != nil && t?.objectValue != nil
        let difference = twoWay ? "differs between the sides and there is no base version" : "changed differently on both sides"
        switch rule.strategy {
        case .neverAuto:
            return conflict(rule, "\(difference); never merged automatically", b, o, t)
        case .statusMachine(let stages):
            let message: String
            if twoWay {
                message = "\(difference) (ours \(StatusOrder.describe(o)), theirs \(StatusOrder.describe(t)))"
            } else if StatusOrder.isForward(from: b, to: o, stages: stages) && StatusOrder.isForward(from: b, to: t, stages: stages) {
                message = "two different forward moves: \(StatusOrder.describe(from: b, to: o)) by ours, \(StatusOrder.describe(from: b, to: t)) by theirs"
            } else {
                message = "a move that is not forward: \(StatusOrder.describe(from: b, to: o)) by ours, \(StatusOrder.describe(from: b, to: t)) by theirs"
            }
            return conflict(rule, message, b, o, t)
        case .keyedList where listShaped:
            return mergeKeyedList(b, o, t, oneSided: nil, node: node ?? PolicyNode(), rule: rule, inherited: inherited)
        case .set where listShaped:
            return mergeSet(b, o, t, rule: rule, appendOnly: false)
        case .appendOnly where listShaped:
            return mergeSet(b, o, t, rule: rule, appendOnly: true)
        case .authority(let owner) where !objectsInside:
            if !twoWay, o == nil || t == nil {
                break  // a deletion against an edit: the always-on safety rule below, whatever the owner
            }
            if let side = ownerSide(owner) {
                let taken = side == .ours ? o : t
                let setAside = side == .ours ? t : o
                decide(
                    side == .ours ? .ours : .theirs, rule.id,
                    "\(difference); \(side.rawValue) owns this element (\(owner.rawValue)), so its value was taken and the other kept for audit",
                    discarded: setAside ?? .null)
                return taken
            }
            return conflict(rule, "\(difference) and the record's origin is unknown, so the owner cannot be told", b, o, t)
        default:
            break
        }
        if objectsInside, case .object(let oo)? = o, case .object(let to)? = t {
            return .object(mergeObject(b?.objectValue, oo, to, node: node, inherited: inherited, primaryIsTheirs: false, isResourceRoot: false))
        }
        if !twoWay, o == nil || t == nil {
            let message = o == nil ? "removed by ours but changed by theirs" : "removed by theirs but changed by ours"
            return conflict(SafetyRules.deleteVersusEdit, message, b, o, t)
        }
        return conflict(rule, difference, b, o, t)
    }

    /// Merges the members of an object: ours' members in ours' order (theirs' when only theirs changed),
    /// then the other side's additions in its order.
    mutating func mergeObject(
        _ b: JSONObject?, _ o: JSONObject, _ t: JSONObject, node: PolicyNode?, inherited: MergeRule, primaryIsTheirs: Bool,
        isResourceRoot: Bool
    ) -> JSONObject {
        let first = primaryIsTheirs ? t : o
        let second = primaryIsTheirs ? o : t
        var members: [JSONMember] = []
        members.reserveCapacity(first.count + 2)
        for (position, member) in first.members.enumerated() {
            let other = Merger.lookup(member.key, in: second, at: position)
            let (ov, tv) = primaryIsTheirs ? (other, member.value) : (member.value, other)
            let bv = b.flatMap { Merger.lookup(member.key, in: $0, at: position) }
            mergeMember(member.key, bv, ov, tv, ours: o, node: node, inherited: inherited, isResourceRoot: isResourceRoot, into: &members)
        }
        for (position, member) in second.members.enumerated() where Merger.lookup(member.key, in: first, at: position) == nil {
            let (ov, tv) = primaryIsTheirs ? (member.value, JSON?.none) : (JSON?.none, member.value)
            let bv = b.flatMap { Merger.lookup(member.key, in: $0, at: position) }
            mergeMember(member.key, bv, ov, tv, ours: o, node: node, inherited: inherited, isResourceRoot: isResourceRoot, into: &members)
        }
        if let b, !twoWay, b.count > 0 {
            // Removed on both sides: not in the result, but a decision all the same.
            for (position, member) in b.members.enumerated()
            where Merger.lookup(member.key, in: o, at: position) == nil && Merger.lookup(member.key, in: t, at: position) == nil {
                path.append(.member(member.key))
                decide(.both, (node?.child(member.key)?.rule ?? inherited).id, "removed on both sides")
                path.removeLast()
            }
        }
        return JSONObject(membersWithUniqueKeys: members)
    }

    private mutating func mergeMember(
        _ key: String, _ bv: JSON?, _ ov: JSON?, _ tv: JSON?, ours o: JSONObject, node: PolicyNode?, inherited: MergeRule,
        isResourceRoot: Bool, into members: inout [JSONMember]
    ) {
        if isResourceRoot && key == "id" {
            // Server-managed: the hub's id, present or absent.
            if let id = o["id"] { members.append(JSONMember(key, id)) }
            return
        }
        let child = node?.child(key)
        let rule = child?.rule ?? inherited
        path.append(.member(key))
        defer { path.removeLast() }
        if isResourceRoot && key == "meta" {
            if let meta = mergeMeta(bv, ov, tv, node: child, rule: rule, inherited: inherited) {
                members.append(JSONMember(key, meta))
            }
            return
        }
        if let merged = mergeNode(bv, ov, tv, node: child, rule: rule, inherited: inherited) {
            members.append(JSONMember(key, merged))
        }
    }

    /// `meta` without its server-managed members merges as usual; ours' `versionId` and `lastUpdated`
    /// are put back unchanged.
    private mutating func mergeMeta(_ b: JSON?, _ o: JSON?, _ t: JSON?, node: PolicyNode?, rule: MergeRule, inherited: MergeRule) -> JSON? {
        func strip(_ meta: JSON?) -> JSON? {
            guard let object = meta?.objectValue else { return meta }
            return Merger.metaWithoutServerManaged(object)
        }
        let merged = mergeNode(strip(b), strip(o), strip(t), node: node, rule: rule, inherited: inherited)
        guard let ourMeta = o?.objectValue else { return merged }
        var members = ourMeta.members.filter { $0.key == "versionId" || $0.key == "lastUpdated" }
        guard case .object(let rest)? = merged else { return members.isEmpty ? merged : .object(JSONObject(members)) }
        members.append(contentsOf: rest.members)
        return .object(JSONObject(members))
    }

    // MARK: Helpers

    func ownerSide(_ owner: AuthorityOwner) -> MergeSide? {
        switch owner {
        case .origin: context.origin
        case .hub: .ours
        case .provider: .theirs
        }
    }

    static func isListOrAbsent(_ value: JSON?) -> Bool {
        switch value {
        case nil, .array?: true
        default: false
        }
    }

    static func isObjectOrAbsent(_ value: JSON?) -> Bool {
        switch value {
        case nil, .object?: true
        default: false
        }
    }

    /// How an item present on one side only is explained: an addition, or (two-way) just a difference.
    func addition(by side: MergeSide) -> String {
        twoWay ? "in \(side.rawValue) only, kept (no base version to tell an addition from a removal)" : "added by \(side.rawValue)"
    }

    static func changeDescription(_ b: JSON?, _ changed: JSON?, by side: MergeSide) -> String {
        if changed == nil { return "removed by \(side.rawValue)" }
        if b == nil { return "added by \(side.rawValue)" }
        return "changed by \(side.rawValue)"
    }
}

/// One step of a merge path: an element, a keyed list item, or a set item named by its value.
enum PathSegment {
    case member(String)
    case item(ItemKey)
    case value(JSON)
}

/// The stages of a `status-machine` rule.
enum StatusOrder {
    /// The stage of `status`; `nil` when absent, not a string or not in the order.
    static func stage(of status: JSON?, stages: [[String]]) -> Int? {
        guard case .string(let code)? = status else { return nil }
        return stages.firstIndex { $0.contains(code) }
    }

    /// A move to the same or a later stage. A first status (none in base) counts as forward; a removed
    /// status, or one outside the order, does not.
    static func isForward(from b: JSON?, to value: JSON?, stages: [[String]]) -> Bool {
        guard let to = stage(of: value, stages: stages) else { return false }
        guard b != nil else { return true }
        guard let from = stage(of: b, stages: stages) else { return false }
        return to >= from
    }

    static func describe(_ value: JSON?) -> String {
        guard let value else { return "absent" }
        return value.stringValue ?? value.text()
    }

    static func describe(from b: JSON?, to value: JSON?) -> String {
        "\(describe(b)) → \(describe(value))"
    }
}
