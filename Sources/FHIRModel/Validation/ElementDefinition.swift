import FHIRJSON

/// A FHIR R4 type as the element tables name it: a primitive (lower case, as in the spec) or a complex
/// datatype (upper case), or `Resource` for `contained`.
enum FHIRType: String, Sendable, Hashable, CaseIterable {
    // Primitive types.
    case base64Binary, boolean, canonical, code, date, dateTime, decimal, id, instant, integer, markdown, oid
    case positiveInt, string, time, unsignedInt, uri, url, uuid, xhtml
    // General-purpose datatypes.
    case Address, Age, Annotation, Attachment, CodeableConcept, Coding, ContactPoint, Count, Distance, Duration
    case HumanName, Identifier, Money, Period, Quantity, Range, Ratio, Reference, SampledData, Signature
    case SimpleQuantity, Timing
    // Metadata datatypes.
    case ContactDetail, Contributor, DataRequirement, Expression, ParameterDefinition, RelatedArtifact
    case TriggerDefinition, UsageContext
    // Special-purpose datatypes.
    case Dosage, Extension, Meta, Narrative
    /// Any resource (the element type of `contained`).
    case Resource

    /// Primitive types (written in lower case).
    var isPrimitive: Bool {
        switch self {
        case .base64Binary, .boolean, .canonical, .code, .date, .dateTime, .decimal, .id, .instant, .integer, .markdown,
            .oid, .positiveInt, .string, .time, .unsignedInt, .uri, .url, .uuid, .xhtml:
            true
        default:
            false
        }
    }

    /// The suffix this type gives a choice element in JSON: `scheduled[x]` as Timing is `scheduledTiming`.
    /// SimpleQuantity is a profile of Quantity, so it is written `…Quantity`.
    var choiceSuffix: String {
        if self == .SimpleQuantity { return "Quantity" }
        return rawValue.prefix(1).uppercased() + rawValue.dropFirst()
    }
}

/// Minimum and maximum occurrences, written as in the R4 spec: `"0..1"`, `"1..1"`, `"0..*"`, `"1..*"`.
struct Cardinality: Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    let min: Int
    /// `true` for `..*`: the JSON value is an array.
    let repeats: Bool

    init(stringLiteral text: String) {
        switch text {
        case "0..1": (min, repeats) = (0, false)
        case "1..1": (min, repeats) = (1, false)
        case "0..*": (min, repeats) = (0, true)
        case "1..*": (min, repeats) = (1, true)
        default: preconditionFailure("cardinality \(text) is not one the R4 tables use")
        }
    }

    var isRequired: Bool { min > 0 }
    var description: String { "\(min)..\(repeats ? "*" : "1")" }
}

/// One element of a structure, as the R4 spec's tree view lists it.
struct ElementDefinition: Sendable {
    /// What the element holds.
    enum Content: Sendable {
        /// One type.
        case type(FHIRType)
        /// A choice `name[x]` among types; JSON names it `name` + the type's ``FHIRType/choiceSuffix``.
        case choice([FHIRType])
        /// An inline backbone element with its own children and invariants.
        case backbone([ElementDefinition], [Invariant])
    }

    /// The element name (without `[x]` for choices).
    let name: String
    let cardinality: Cardinality
    let content: Content
    /// The required value set bound to a `code`, `Coding` or `CodeableConcept` element, if any.
    let binding: ValueSet?

    /// An element of one type, e.g. `.element("status", "1..1", .code, bound: .requestStatus)`.
    static func element(_ name: String, _ cardinality: Cardinality, _ type: FHIRType, bound: ValueSet? = nil)
        -> ElementDefinition
    {
        ElementDefinition(name: name, cardinality: cardinality, content: .type(type), binding: bound)
    }

    /// A choice element `name[x]`, e.g. `.choice("scheduled", "0..1", [.Timing, .Period, .string])`.
    static func choice(_ name: String, _ cardinality: Cardinality, _ types: [FHIRType]) -> ElementDefinition {
        ElementDefinition(name: name, cardinality: cardinality, content: .choice(types), binding: nil)
    }

    /// A backbone element with its children, e.g. `CarePlan.activity`.
    static func backbone(
        _ name: String, _ cardinality: Cardinality, _ elements: [ElementDefinition], invariants: [Invariant] = []
    ) -> ElementDefinition {
        ElementDefinition(name: name, cardinality: cardinality, content: .backbone(elements, invariants), binding: nil)
    }

    /// How the spec writes the element's name: `scheduled[x]` for choices.
    var specName: String {
        if case .choice = content { return name + "[x]" }
        return name
    }
}

/// A resource, datatype or backbone element: its elements (own and inherited) indexed by JSON name.
final class StructureDefinition: Sendable {
    /// Where the structure sits in the R4 type hierarchy, which decides the inherited elements.
    enum Kind: Sendable {
        /// A DomainResource: `id`, `meta`, `implicitRules`, `language`, `text`, `contained`, `extension`,
        /// `modifierExtension`.
        case resource
        /// An Element: `id`, `extension`. Its inline children (Timing.repeat) are Elements too.
        case datatype
        /// A datatype derived from BackboneElement (Timing, Dosage): `id`, `extension`, `modifierExtension`;
        /// its inline children are Elements.
        case backboneDatatype
        /// A BackboneElement inside a resource (CarePlan.activity): `id`, `extension`, `modifierExtension`.
        case backbone

        /// The kind of the inline elements declared inside a structure of this kind.
        var childKind: Kind {
            switch self {
            case .resource, .backbone: .backbone
            case .datatype, .backboneDatatype: .datatype
            }
        }
    }

    /// What a JSON member name resolves to.
    struct Property: Sendable {
        let element: ElementDefinition
        let type: PropertyType
    }

    /// The type of one JSON member.
    enum PropertyType: Sendable {
        case fhir(FHIRType)
        case backbone(StructureDefinition)
    }

    /// `CarePlan`, `Identifier`, `CarePlan.activity.detail`.
    let name: String
    let kind: Kind
    /// Own elements followed by the inherited ones.
    let elements: [ElementDefinition]
    let invariants: [Invariant]
    /// JSON member name → element and concrete type (each choice variant has its own entry).
    let properties: [String: Property]
    /// Elements with minimum cardinality 1.
    let requiredElements: [ElementDefinition]

    init(_ name: String, _ kind: Kind, _ ownElements: [ElementDefinition], invariants: [Invariant] = []) {
        self.name = name
        self.kind = kind
        self.invariants = invariants
        let inherited: [ElementDefinition]
        switch kind {
        case .resource:
            inherited = [
                .element("id", "0..1", .id),
                .element("meta", "0..1", .Meta),
                .element("implicitRules", "0..1", .uri),
                .element("language", "0..1", .code),
                .element("text", "0..1", .Narrative),
                .element("contained", "0..*", .Resource),
                .element("extension", "0..*", .Extension),
                .element("modifierExtension", "0..*", .Extension),
            ]
        case .datatype:
            inherited = [.element("id", "0..1", .string), .element("extension", "0..*", .Extension)]
        case .backbone, .backboneDatatype:
            inherited = [
                .element("id", "0..1", .string), .element("extension", "0..*", .Extension),
                .element("modifierExtension", "0..*", .Extension),
            ]
        }
        elements = ownElements + inherited
        var properties: [String: Property] = [:]
        for element in elements {
            switch element.content {
            case .type(let type):
                properties[element.name] = Property(element: element, type: .fhir(type))
            case .choice(let types):
                for type in types {
                    properties[element.name + type.choiceSuffix] = Property(element: element, type: .fhir(type))
                }
            case .backbone(let children, let childInvariants):
                let child = StructureDefinition(
                    "\(name).\(element.name)", kind.childKind, children, invariants: childInvariants)
                properties[element.name] = Property(element: element, type: .backbone(child))
            }
        }
        self.properties = properties
        requiredElements = elements.filter(\.cardinality.isRequired)
    }
}

/// A fixed (required-strength) R4 value set.
struct ValueSet: Sendable {
    /// The value set's short name in the R4 spec (`request-status`).
    let name: String
    /// The allowed codes.
    let codes: Set<String>
    /// The codes in spec order, for messages.
    let orderedCodes: [String]
    /// For `Coding`/`CodeableConcept` bindings: the code system whose codes are checked. Codings from other
    /// systems are left alone (the binding is extensible, as for `Encounter.class`).
    let system: String?

    init(_ name: String, system: String? = nil, _ codes: [String]) {
        self.name = name
        self.system = system
        self.orderedCodes = codes
        self.codes = Set(codes)
    }
}

/// A rule over one object of a structure (an R4 invariant such as `per-1`, or a caresync rule attached
/// to a datatype such as the NHS number check on Identifier).
struct Invariant: Sendable {
    /// The R4 key (`per-1`) or a caresync name.
    let key: String
    /// Adds the issues found in `object` (at `path`) to `issues`.
    let check: @Sendable (
        _ object: JSONObject, _ path: ValidationPath, _ context: ValidationContext, _ issues: inout [ValidationIssue]
    ) -> Void

    init(
        _ key: String,
        _ check: @escaping @Sendable (JSONObject, ValidationPath, ValidationContext, inout [ValidationIssue]) -> Void
    ) {
        self.key = key
        self.check = check
    }

    /// An invariant that fails with `invariant-failed` and `sentence` whenever `holds` is false.
    static func r4(_ key: String, _ sentence: String, _ holds: @escaping @Sendable (JSONObject) -> Bool) -> Invariant {
        Invariant(key) { object, path, _, issues in
            if !holds(object) {
                let at = path.description
                issues.append(ValidationIssue(path: at, code: .invariantFailed, message: "\(at) breaks R4 rule \(key): \(sentence)."))
            }
        }
    }
}

/// What invariants may consult beyond the object itself.
struct ValidationContext: Sendable {
    let profile: ValidationProfile
    /// The ids of the root resource's contained resources (for local references `#id`).
    let containedIDs: Set<String>
}
