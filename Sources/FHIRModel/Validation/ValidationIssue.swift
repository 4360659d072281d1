public import FHIRJSON

/// Which rules a validation applies.
public enum ValidationProfile: String, Sendable, Hashable, CaseIterable {
    /// Structural FHIR R4 (4.0.1) conformance, what any R4 server accepts: element names, cardinality,
    /// primitive forms, required value sets, the core invariants. Two caresync safety rules hold here too,
    /// because no profile makes them safe: `modifierExtension` is refused, and an identifier under the NHS
    /// number system must hold a valid NHS number.
    case r4
    /// ``r4`` plus the caresync sync rules: the record names its patient by a valid NHS number (exact system
    /// URI, one number only), and the resource's business identifiers have an absolute system and a value.
    case caresync
}

/// Size and nesting limits applied before anything else (DESIGN §9).
public struct ValidationLimits: Sendable, Hashable {
    /// Largest accepted document in bytes (default 2 MiB).
    public var maxBytes: Int
    /// Deepest accepted nesting of arrays and objects (default 64).
    public var maxDepth: Int

    /// - Parameters:
    ///   - maxBytes: largest accepted document in bytes.
    ///   - maxDepth: deepest accepted nesting of arrays and objects.
    public init(maxBytes: Int = 2 * 1024 * 1024, maxDepth: Int = 64) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
    }
}

/// One problem found in a resource: where, which rule, and a sentence for people.
public struct ValidationIssue: Sendable, Hashable, CustomStringConvertible {
    /// FHIRPath-like location, e.g. `CarePlan.activity[1].detail.status`; choice elements carry their JSON
    /// name (`scheduledTiming`). Document-level problems use the resource type name (or `Resource`).
    public let path: String
    /// The rule that was broken.
    public let code: ValidationCode
    /// A sentence naming the field and the rule. Never quotes free text, dates or identifier values.
    public let message: String

    /// Creates an issue.
    public init(path: String, code: ValidationCode, message: String) {
        self.path = path
        self.code = code
        self.message = message
    }

    /// `path: message [code]`.
    public var description: String { "\(path): \(message) [\(code.rawValue)]" }
}

/// The stable, kebab-case codes of validation issues; `docs/validation.md` describes each one.
public enum ValidationCode: String, Sendable, Hashable, CaseIterable {
    // MARK: The document
    /// The bytes are not JSON (syntax error).
    case notJSON = "not-json"
    /// A string in the document is not valid UTF-8.
    case invalidUTF8 = "invalid-utf8"
    /// An object has the same key twice.
    case duplicateKey = "duplicate-key"
    /// The document is larger than ``ValidationLimits/maxBytes``.
    case tooLarge = "too-large"
    /// The document nests deeper than ``ValidationLimits/maxDepth``.
    case tooDeep = "too-deep"
    /// The document is JSON but not an object.
    case notAResource = "not-a-resource"

    // MARK: Resource identity and server metadata
    /// `resourceType` is absent or not a string.
    case resourceTypeMissing = "resource-type-missing"
    /// `resourceType` differs from the type the caller expected.
    case resourceTypeMismatch = "resource-type-mismatch"
    /// `resourceType` is not CarePlan, Encounter, RelatedPerson or Patient.
    case resourceTypeUnsupported = "resource-type-unsupported"
    /// `id` is required here (server metadata required, or an id expected) but absent.
    case idMissing = "id-missing"
    /// `id` is not a FHIR id (`[A-Za-z0-9\-\.]{1,64}`).
    case idInvalid = "id-invalid"
    /// `id` differs from the id in the URL.
    case idMismatch = "id-mismatch"
    /// Server metadata required but `meta.versionId` is absent.
    case versionIDMissing = "version-id-missing"
    /// Server metadata required but `meta.lastUpdated` is absent.
    case lastUpdatedMissing = "last-updated-missing"

    // MARK: Structure
    /// A name that is not an R4 element of the type at that place.
    case unknownElement = "unknown-element"
    /// A `modifierExtension`, which caresync cannot safely interpret.
    case modifierExtension = "modifier-extension"
    /// An element with minimum cardinality 1 is absent.
    case requiredMissing = "required-missing"
    /// The JSON kind is wrong: a list where one value belongs, a number where a string belongs, etc.
    case wrongJSONType = "wrong-json-type"
    /// `""`, `[]` or `{}`, which FHIR JSON never uses.
    case emptyValue = "empty-value"
    /// `null` outside a primitive-extension list.
    case nullValue = "null-value"
    /// Two variants of one choice element (`scheduledTiming` and `scheduledString`).
    case choiceMultiple = "choice-multiple"
    /// A `_name` primitive extension with no primitive `name` beside it in the type, or of the wrong shape.
    case primitiveExtensionInvalid = "primitive-extension-invalid"
    /// A primitive value whose text breaks its type's lexical form (date, code, id, uri, integer range…).
    case invalidValue = "invalid-value"
    /// A code outside the required R4 value set of its element.
    case codeNotInValueSet = "code-not-in-value-set"
    /// A Period whose end is before its start (R4 per-1).
    case periodEndBeforeStart = "period-end-before-start"
    /// Another R4 invariant (ext-1, cpt-2, ref-1, dom-2, cpl-3…); the message names it.
    case invariantFailed = "invariant-failed"
    /// Two items of one list share an element `id`.
    case duplicateElementID = "duplicate-element-id"
    /// Two identifiers of one list share `system|value`.
    case duplicateIdentifier = "duplicate-identifier"
    /// A contained resource is not an object with `resourceType` and `id`.
    case containedInvalid = "contained-invalid"

    // MARK: NHS number (values under the NHS number system, both profiles)
    /// The NHS number contains spaces.
    case nhsNumberSpaces = "nhs-number-spaces"
    /// The NHS number contains something other than digits.
    case nhsNumberNotDigits = "nhs-number-not-digits"
    /// The NHS number does not have 10 digits.
    case nhsNumberLength = "nhs-number-length"
    /// The NHS number is ten identical digits.
    case nhsNumberSameDigits = "nhs-number-same-digits"
    /// The NHS number fails the Modulus 11 check.
    case nhsNumberCheckDigit = "nhs-number-check-digit"

    // MARK: caresync profile
    /// The record does not name its patient by an NHS number.
    case nhsNumberMissing = "nhs-number-missing"
    /// An identifier system that is a misspelling of `https://fhir.nhs.uk/Id/nhs-number`.
    case nhsNumberSystem = "nhs-number-system"
    /// The record names two different NHS numbers for its patient.
    case nhsNumberConflict = "nhs-number-conflict"
    /// The subject/patient reference points at something other than a Patient.
    case subjectNotPatient = "subject-not-patient"
    /// A business identifier without a system or without a value.
    case identifierIncomplete = "identifier-incomplete"
    /// A business identifier system that is not an absolute URI.
    case identifierSystemInvalid = "identifier-system-invalid"

    init(_ problem: NHSNumber.Problem) {
        switch problem {
        case .containsSpaces: self = .nhsNumberSpaces
        case .notDigits: self = .nhsNumberNotDigits
        case .wrongLength: self = .nhsNumberLength
        case .allSameDigits: self = .nhsNumberSameDigits
        case .badCheckDigit: self = .nhsNumberCheckDigit
        }
    }
}

/// The outcome of validating one resource.
public struct ValidationReport: Sendable {
    /// The profile that was applied.
    public let profile: ValidationProfile
    /// The parsed document; `nil` when it was refused before its content was checked (not acceptable JSON,
    /// over the size or depth limit).
    public let resource: JSON?
    /// The resource type, when `resourceType` names one caresync knows.
    public let resourceType: ResourceType?
    /// Every issue found, in document order within each check.
    public let issues: [ValidationIssue]

    /// Creates a report.
    public init(profile: ValidationProfile, resource: JSON?, resourceType: ResourceType?, issues: [ValidationIssue]) {
        self.profile = profile
        self.resource = resource
        self.resourceType = resourceType
        self.issues = issues
    }

    /// `true` when no issue was found.
    public var isValid: Bool { issues.isEmpty }
}
