import FHIRJSON
import FHIRModel

/// The always-on safety rules (DESIGN §4). They run before and regardless of the policy, and no policy
/// can turn them off.
public enum SafetyRules {
    /// A different subject NHS number between any two present sides: the merge is refused.
    public static let wrongPatient = SafetyRule(
        id: "safety-wrong-patient",
        hazard: "Records of two different patients are merged, so one patient's care plan or contact appears in another patient's record.",
        rationale: "Any two present sides (base, ours, theirs) that carry different subject NHS numbers, or one side that carries two, are refused: no result is produced.")

    /// A side that deleted the record, or a list item or element, while the other side edited it: a conflict.
    public static let deleteVersusEdit = SafetyRule(
        id: "safety-delete-vs-edit",
        hazard: "A record, activity or element that one system deleted silently discards an edit made in the other system, or the deletion is silently undone.",
        rationale: "Deletion on one side and an edit on the other is held for review; the hub's version stays in place until it is resolved.")

    /// `entered-in-error` on exactly one side of a status: a conflict.
    public static let enteredInError = SafetyRule(
        id: "safety-entered-in-error",
        hazard: "A record marked entered-in-error in one system stays active in the other, or a retracted record is silently brought back.",
        rationale: "Where a status is entered-in-error on one side only (the record or activity present on both), the status is held for review unless both sides agree.")

    /// Every safety rule, for documentation and lookups by id.
    public static let all: [SafetyRule] = [wrongPatient, deleteVersusEdit, enteredInError]

    /// The statuses the entered-in-error rule watches, by path.
    public static let enteredInErrorStatusPaths = ["CarePlan.status", "Encounter.status", "CarePlan.activity.detail.status"]

    /// The status code the entered-in-error rule looks for.
    public static let enteredInErrorCode = "entered-in-error"

    /// Server-managed elements: never merged; the result carries the hub's (`ours`) values, present or
    /// absent, so that the hub's version stays the one an `If-Match` update is made against.
    public static let serverManagedElements = ["id", "meta.versionId", "meta.lastUpdated"]

    /// Why two sides must not be merged because they belong to different patients, or `nil` when they may.
    static func patientRefusal(_ sides: [(name: String, resource: JSON)], type: ResourceType) -> MergeError? {
        var first: (side: String, number: String)?
        for side in sides {
            let numbers = ResourceIdentity.nhsNumberTexts(of: side.resource, type: type)
            var distinct: [String] = []
            for number in numbers where !distinct.contains(number) { distinct.append(number) }
            if distinct.count > 1 {
                return MergeError(
                    .ambiguousPatient,
                    "\(side.name) carries \(distinct.count) different subject NHS numbers (\(distinct.map(mask).joined(separator: ", ")))",
                    rule: wrongPatient.id)
            }
            guard let number = distinct.first else { continue }
            if let first, first.number != number {
                return MergeError(
                    .wrongPatient,
                    "the subject NHS number differs: \(first.side) has \(mask(first.number)), \(side.name) has \(mask(number))",
                    rule: wrongPatient.id)
            }
            if first == nil { first = (side.name, number) }
        }
        return nil
    }

    /// Whether `value` is the entered-in-error status code.
    static func isEnteredInError(_ value: JSON?) -> Bool {
        if case .string(let code)? = value { return code == enteredInErrorCode }
        return false
    }

    /// An NHS number (or whatever text stands in its place) with only the last three characters shown.
    static func mask(_ number: String) -> String {
        String(repeating: "*", count: max(0, number.count - 3)) + number.suffix(3)
    }
}

/// An always-on safety rule: its id, the hazard it controls and what it does.
public struct SafetyRule: Sendable, Hashable {
    /// Stable identifier, named by the conflicts and refusals the rule makes.
    public let id: String
    /// The hazard the rule controls.
    public let hazard: String
    /// What the rule does.
    public let rationale: String
}
