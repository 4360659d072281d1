import FHIRJSON
import MergeCore
import StateStore

/// A stored conflict as operators read it: for each conflicting path, the base, ours (the hub's) and
/// theirs (the provider's) values, the rule that held it and the hazard that rule controls.
///
/// The store keeps the three whole records and the paths with their rules; the values at each path
/// come from merging the stored records again under the policy, with the merge context the engine used
/// (the merge is pure and deterministic, so it finds the same conflicts), which also gives the rule's
/// hazard text. A path the current policy
/// no longer holds is shown with `reproduced == false`, its rule and hazard from the policy file.
struct ConflictView {
    struct PathView {
        let path: String
        let rule: String
        let hazard: String
        /// Why the merge held the path, in a sentence (when reproduced).
        let message: String?
        let base: JSON?
        let ours: JSON?
        let theirs: JSON?
        /// Whether merging the stored records again held this path, so that the three values are known.
        let reproduced: Bool
    }

    let record: ConflictRecord
    let base: JSON?
    let ours: JSON?
    let theirs: JSON?
    let paths: [PathView]
    let policyVersion: String

    init(_ record: ConflictRecord, policy: MergePolicy, context: MergeContext) {
        self.record = record
        base = Self.parse(record.conflict.base)
        ours = Self.parse(record.conflict.ours)
        theirs = Self.parse(record.conflict.theirs)
        policyVersion = policy.version
        let outcome = merge(base: base, ours: ours, theirs: theirs, policy: policy, context: context)
        let found = Dictionary(outcome.conflicts.map { ($0.path, $0) }) { first, _ in first }
        paths = record.conflict.paths.map { stored in
            if let conflict = found[stored.path] {
                return PathView(
                    path: stored.path, rule: stored.rule, hazard: conflict.hazard, message: conflict.message,
                    base: conflict.base, ours: conflict.ours, theirs: conflict.theirs, reproduced: true)
            }
            return PathView(
                path: stored.path, rule: stored.rule, hazard: Self.hazard(of: stored.rule, in: policy), message: nil,
                base: nil, ours: nil, theirs: nil, reproduced: false)
        }
    }

    /// The hazard a rule controls: a policy rule's, or an always-on safety rule's.
    static func hazard(of rule: String, in policy: MergePolicy) -> String {
        if let hazard = policy.rule(id: rule)?.hazard { return hazard }
        if let safety = SafetyRules.all.first(where: { $0.id == rule }) { return safety.hazard }
        return "(rule \(rule) is not in the current policy)"
    }

    private static func parse(_ bytes: [UInt8]?) -> JSON? {
        bytes.flatMap { try? JSON.parse($0) }
    }
}
