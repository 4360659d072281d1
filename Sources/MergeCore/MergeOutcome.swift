public import FHIRJSON

/// One of the two sides of a merge.
public enum MergeSide: String, Sendable, Hashable, CaseIterable {
    /// The hub's current version.
    case ours
    /// The provider's new version.
    case theirs

    /// The other side.
    public var other: MergeSide { self == .ours ? .theirs : .ours }
}

/// What a merge needs to know beyond the three versions.
public struct MergeContext: Sendable, Hashable {
    /// The side the record originated from (its owner under `authority` rules with owner `origin`);
    /// `nil` when unknown, in which case such rules hold concurrent changes for review.
    public var origin: MergeSide?

    /// - Parameter origin: the side the record originated from, if known.
    public init(origin: MergeSide? = nil) {
        self.origin = origin
    }
}

/// The result of ``merge(base:ours:theirs:policy:context:)``.
public struct MergeOutcome: Sendable, Hashable {
    /// How the merge ended.
    public enum Status: String, Sendable, Hashable {
        /// Every difference was resolved by a rule: `result` is the merged record.
        case merged
        /// Some paths need review: `result` keeps ours at those paths and merges everything else.
        case conflict
        /// A safety rule refused the merge: there is no result.
        case refused
    }

    public var status: Status
    /// The merged record; `nil` when refused, or when the merged record is deleted (absent).
    public var result: JSON?
    /// Every automatic decision that took a change, with the rule that made it.
    public var decisions: [MergeDecision]
    /// Every path held for review.
    public var conflicts: [MergeConflict]
    /// Why the merge was refused (empty unless `status` is `refused`).
    public var errors: [MergeError]

    public init(status: Status, result: JSON?, decisions: [MergeDecision], conflicts: [MergeConflict], errors: [MergeError]) {
        self.status = status
        self.result = result
        self.decisions = decisions
        self.conflicts = conflicts
        self.errors = errors
    }
}

/// An automatic merge decision: which side's change was taken at a path, and by which rule.
public struct MergeDecision: Sendable, Hashable {
    /// What the decision took.
    public enum Took: String, Sendable, Hashable {
        /// Our change (the hub's).
        case ours
        /// Their change (the provider's).
        case theirs
        /// The same change, made on both sides.
        case both
    }

    /// Where, e.g. `CarePlan.activity[act-1].detail.status`.
    public let path: String
    /// The id of the rule that decided.
    public let rule: String
    public let took: Took
    /// A sentence saying what happened.
    public let explanation: String
    /// The value the decision set aside, when a rule preferred one side's change over the other's
    /// (`authority`); kept for audit.
    public let discarded: JSON?

    public init(path: String, rule: String, took: Took, explanation: String, discarded: JSON? = nil) {
        self.path = path
        self.rule = rule
        self.took = took
        self.explanation = explanation
        self.discarded = discarded
    }
}

/// A path held for review: the three versions of the value there (`nil` = absent) and the rule that
/// stopped the automatic merge.
public struct MergeConflict: Sendable, Hashable {
    public let path: String
    /// The id of the rule (policy or safety) that held the path.
    public let rule: String
    /// The hazard that rule controls.
    public let hazard: String
    /// Why the path could not be merged automatically.
    public let message: String
    public let base: JSON?
    public let ours: JSON?
    public let theirs: JSON?

    public init(path: String, rule: String, hazard: String, message: String, base: JSON?, ours: JSON?, theirs: JSON?) {
        self.path = path
        self.rule = rule
        self.hazard = hazard
        self.message = message
        self.base = base
        self.ours = ours
        self.theirs = theirs
    }
}

/// Why a merge was refused: a stable `code`, a sentence (NHS numbers masked) and the rule.
public struct MergeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong, as a stable machine-readable code.
    public enum Code: String, Sendable, Hashable {
        /// Two sides carry different subject NHS numbers.
        case wrongPatient = "wrong-patient"
        /// One side carries two different subject NHS numbers.
        case ambiguousPatient = "ambiguous-patient"
        /// A side is not a JSON object with a `resourceType`.
        case notAResource = "not-a-resource"
        /// The sides are resources of different types.
        case resourceTypeMismatch = "resource-type-mismatch"
        /// The resource type is not one caresync synchronises, so the safety rules cannot be applied.
        case unsupportedResourceType = "unsupported-resource-type"
    }

    public let code: Code
    public let message: String
    /// The id of the safety rule that refused; `nil` when the input itself was not a mergeable resource.
    public let rule: String?

    init(_ code: Code, _ message: String, rule: String?) {
        self.code = code
        self.message = message
        self.rule = rule
    }

    public var description: String { "\(message) [\(code.rawValue)]" }
}
