import FHIRJSON
import MergeCore
import PropertyBased
import Testing

/// The algebraic laws of the merge, checked over generated CarePlans, Encounters and RelatedPersons and
/// generated concurrent edits (``Synthetic``), under the default policy.
///
/// Adaptations, stated once:
/// - Server-managed elements (`id`, `meta.versionId`, `meta.lastUpdated`) always come from ours, so
///   "= x" means "= x with ours' server-managed elements".
/// - Swapping ours and theirs also swaps the record's origin (an `authority` rule owned by the origin
///   follows the record, not the position), and compares clean results with list order and server-managed
///   elements set aside: lists keep ours' order, then theirs' additions.
/// - Nothing lost: a new value may also survive as the value an `authority` rule set aside, which the
///   decision keeps for audit.
/// - The generated edits leave out what the always-on safety rules act on (entered-in-error, another
///   patient); those rules have their own properties below.
@Suite("Merge laws over generated records")
struct MergeLawTests {
    let policy = MergePolicy.default

    @Test("merge(b, b, x) = x: a change on the provider side only is taken as it is")
    func theirsOnlyChangeIsTaken() async {
        await propertyCheck(count: 300, input: Synthetic.edits) { scenario in
            let x = scenario.ours
            let outcome = merge(base: scenario.base, ours: scenario.base, theirs: x, policy: policy)
            #expect(outcome.status == .merged, "\(outcome.conflicts)")
            #expect(outcome.result == Laws.withServerManaged(of: scenario.base, in: x))
        }
    }

    @Test("merge(b, x, b) = x: a change on the hub side only is kept as it is")
    func oursOnlyChangeIsKept() async {
        await propertyCheck(count: 300, input: Synthetic.edits) { scenario in
            let x = scenario.ours
            let outcome = merge(base: scenario.base, ours: x, theirs: scenario.base, policy: policy)
            #expect(outcome.status == .merged, "\(outcome.conflicts)")
            #expect(outcome.result == x)
        }
    }

    @Test("merge(b, x, x) = x: the same change on both sides is taken once, with no conflict")
    func sameChangeOnBothSides() async {
        await propertyCheck(count: 300, input: Synthetic.edits) { scenario in
            let x = scenario.ours
            let outcome = merge(base: scenario.base, ours: x, theirs: x, policy: policy)
            #expect(outcome.status == .merged, "\(outcome.conflicts)")
            #expect(outcome.conflicts.isEmpty)
            #expect(outcome.result == x)
        }
    }

    @Test("swapping ours and theirs (and the origin) mirrors the conflicts and decisions and, where clean, gives the same result")
    func swapMirrors() async {
        await propertyCheck(count: 400, input: Synthetic.scenarios, Gen.int(in: 0...2)) { scenario, originChoice in
            let origin: MergeSide? = [MergeSide.ours, .theirs, nil][originChoice]
            let forward = merge(
                base: scenario.base, ours: scenario.ours, theirs: scenario.theirs, policy: policy, context: MergeContext(origin: origin))
            let swapped = merge(
                base: scenario.base, ours: scenario.theirs, theirs: scenario.ours, policy: policy,
                context: MergeContext(origin: origin?.other))
            #expect(forward.status == swapped.status)
            #expect(Laws.conflictViews(forward) == Laws.conflictViews(swapped, mirrored: true))
            #expect(Laws.decisionViews(forward) == Laws.decisionViews(swapped, mirrored: true))
            if forward.status == .merged {
                #expect(Laws.normalised(forward.result) == Laws.normalised(swapped.result))
            }
        }
    }

    @Test("the merge is deterministic, down to the bytes of the result")
    func deterministic() async {
        await propertyCheck(count: 200, input: Synthetic.scenarios) { scenario in
            let first = merge(base: scenario.base, ours: scenario.ours, theirs: scenario.theirs, policy: policy)
            let second = merge(base: scenario.base, ours: scenario.ours, theirs: scenario.theirs, policy: policy)
            #expect(first == second)
            #expect(first.result?.serialized() == second.result?.serialized())
        }
    }

    @Test("nothing is lost: every value new in ours or theirs is in the result or in a conflict")
    func nothingLost() async {
        await propertyCheck(count: 400, input: Synthetic.scenarios, Gen.int(in: 0...2)) { scenario, originChoice in
            let origin: MergeSide? = [MergeSide.ours, .theirs, nil][originChoice]
            let outcome = merge(
                base: scenario.base, ours: scenario.ours, theirs: scenario.theirs, policy: policy, context: MergeContext(origin: origin))
            let baseLeaves = Laws.leaves(scenario.base)
            var kept = Laws.leaves(outcome.result)
            for conflict in outcome.conflicts {
                let path = Laws.keyless(conflict.path)
                kept.formUnion(Laws.leaves(conflict.ours, at: path))
                kept.formUnion(Laws.leaves(conflict.theirs, at: path))
            }
            for decision in outcome.decisions {
                kept.formUnion(Laws.leaves(decision.discarded, at: Laws.keyless(decision.path)))
            }
            let new = Laws.leaves(scenario.ours).union(Laws.leaves(scenario.theirs)).subtracting(baseLeaves)
            let lost = new.subtracting(kept)
            #expect(lost.isEmpty, "lost: \(lost.map { "\($0.path)=\($0.value.text())" }.sorted())")
        }
    }

    @Test("values equal after canonicalisation are never a conflict (member order, versions aside)")
    func canonicalEqualityIsNoConflict() async {
        await propertyCheck(count: 200, input: Synthetic.edits) { scenario in
            guard let x = scenario.ours else { return }
            var reordered = Laws.reversedMembers(x)
            reordered["meta"]?["versionId"] = "9999"
            let outcome = merge(base: scenario.base, ours: x, theirs: reordered, policy: policy)
            #expect(outcome.status == .merged)
            #expect(outcome.conflicts.isEmpty)
            #expect(outcome.result == x)
        }
    }

    @Test("a different NHS number on any side is always refused, with no result and the number masked")
    func differentPatientIsRefused() async {
        await propertyCheck(count: 200, input: Synthetic.edits, Gen.int(in: 0...2)) { scenario, position in
            guard let x = scenario.ours else { return }
            var dice = Dice(seed: UInt64(position) &+ 7)
            let element = x["resourceType"]?.stringValue == "RelatedPerson" ? "patient" : "subject"
            let original = x[element]?["identifier"]?["value"]?.stringValue ?? ""
            var other = Synthetic.nhsNumber(&dice)
            while other == original { other = Synthetic.nhsNumber(&dice) }
            var wrong = x
            wrong[element]?["identifier"]?["value"] = .string(other)
            var sides: [JSON?] = [scenario.base, x, x]
            sides[position] = wrong
            let outcome = merge(base: sides[0], ours: sides[1], theirs: sides[2], policy: policy)
            #expect(outcome.status == .refused)
            #expect(outcome.result == nil)
            #expect(outcome.errors.map(\.code) == [.wrongPatient])
            #expect(outcome.errors.allSatisfy { !$0.message.contains(other) && !$0.message.contains(original) })
        }
    }

    @Test("entered-in-error on exactly one side is always a conflict on that status")
    func enteredInErrorOnOneSide() async {
        await propertyCheck(count: 200, input: Synthetic.edits, Gen.bool) { scenario, onOurs in
            guard let x = scenario.ours, x["resourceType"]?.stringValue != "RelatedPerson" else { return }
            var retracted = x
            retracted["status"] = "entered-in-error"
            let outcome = onOurs
                ? merge(base: scenario.base, ours: retracted, theirs: x, policy: policy)
                : merge(base: scenario.base, ours: x, theirs: retracted, policy: policy)
            let type = x["resourceType"]!.stringValue!
            #expect(outcome.status == .conflict)
            #expect(outcome.conflicts.contains { $0.path == "\(type).status" && $0.rule == "safety-entered-in-error" })
            #expect(outcome.result?["status"] == (onOurs ? "entered-in-error" : x["status"]))
            let agreed = merge(base: scenario.base, ours: retracted, theirs: retracted, policy: policy)
            #expect(agreed.status == .merged)
        }
    }
}

/// Helpers for stating the laws.
enum Laws {
    /// `value` with `source`'s server-managed elements (present or absent).
    static func withServerManaged(of source: JSON?, in value: JSON?) -> JSON? {
        guard var value, let source else { return value }
        value["id"] = source["id"]
        var meta = value["meta"] ?? [:]
        meta["versionId"] = source["meta"]?["versionId"]
        meta["lastUpdated"] = source["meta"]?["lastUpdated"]
        value["meta"] = meta.objectValue?.isEmpty == true ? JSON?.none : meta
        return value
    }

    /// Server-managed elements removed and every list sorted by canonical bytes.
    static func normalised(_ value: JSON?) -> JSON? {
        guard var value else { return nil }
        value["id"] = nil
        value["meta"]?["versionId"] = nil
        value["meta"]?["lastUpdated"] = nil
        return sortedLists(value)
    }

    static func sortedLists(_ value: JSON) -> JSON {
        switch value {
        case .array(let elements):
            return .array(elements.map(sortedLists).sorted { $0.canonicalBytes.lexicographicallyPrecedes($1.canonicalBytes) })
        case .object(let object):
            return .object(JSONObject(object.members.map { JSONMember($0.key, sortedLists($0.value)) }))
        default:
            return value
        }
    }

    static func reversedMembers(_ value: JSON) -> JSON {
        switch value {
        case .array(let elements): .array(elements.map(reversedMembers))
        case .object(let object): .object(JSONObject(object.members.reversed().map { JSONMember($0.key, reversedMembers($0.value)) }))
        default: value
        }
    }

    struct ConflictView: Hashable {
        var path: String
        var rule: String
        var base: JSON?
        var ours: JSON?
        var theirs: JSON?
    }

    static func conflictViews(_ outcome: MergeOutcome, mirrored: Bool = false) -> [ConflictView: Int] {
        var views: [ConflictView: Int] = [:]
        for conflict in outcome.conflicts {
            let view = ConflictView(
                path: conflict.path, rule: conflict.rule, base: conflict.base,
                ours: mirrored ? conflict.theirs : conflict.ours, theirs: mirrored ? conflict.ours : conflict.theirs)
            views[view, default: 0] += 1
        }
        return views
    }

    struct DecisionView: Hashable {
        var path: String
        var rule: String
        var took: MergeDecision.Took
    }

    static func decisionViews(_ outcome: MergeOutcome, mirrored: Bool = false) -> [DecisionView: Int] {
        var views: [DecisionView: Int] = [:]
        for decision in outcome.decisions {
            var took = decision.took
            if mirrored { took = took == .ours ? .theirs : took == .theirs ? .ours : .both }
            views[DecisionView(path: decision.path, rule: decision.rule, took: took), default: 0] += 1
        }
        return views
    }

    struct Leaf: Hashable {
        var path: String
        var value: JSON
    }

    /// Every scalar in `value` with its path (list items transparent), server-managed elements left out.
    static func leaves(_ value: JSON?, at path: String? = nil) -> Set<Leaf> {
        guard let value else { return [] }
        var result: Set<Leaf> = []
        collect(value, path ?? (value["resourceType"]?.stringValue ?? ""), into: &result)
        return result.filter { !$0.path.hasSuffix(".id") || $0.path.split(separator: ".").count > 2 }
            .filter { !$0.path.hasSuffix(".meta.versionId") && !$0.path.hasSuffix(".meta.lastUpdated") }
    }

    private static func collect(_ value: JSON, _ path: String, into result: inout Set<Leaf>) {
        switch value {
        case .object(let object):
            for member in object { collect(member.value, path + "." + member.key, into: &result) }
        case .array(let elements):
            for element in elements { collect(element, path, into: &result) }
        default:
            result.insert(Leaf(path: path, value: value))
        }
    }

    /// A merge path without its list keys: `CarePlan.activity[act-1].detail` → `CarePlan.activity.detail`.
    static func keyless(_ path: String) -> String {
        var result = ""
        var depth = 0
        for character in path {
            if character == "[" { depth += 1 } else if character == "]" { depth -= 1 } else if depth == 0 { result.append(character) }
        }
        return result
    }
}
