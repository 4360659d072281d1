import FHIRJSON
import FHIRModel
import Testing

/// One bad input and exactly the issues (code at path) it must produce.
struct BadInput: Sendable, CustomTestStringConvertible {
    enum Input: Sendable {
        case bytes([UInt8])
        case resource(JSON)
    }

    let rule: String
    let input: Input
    let expected: Set<Expectation>
    var profile: ValidationProfile = .caresync
    var limits = ValidationLimits()
    var requiresServerMetadata = false
    var expectedType: ResourceType?
    var expectedID: String?

    struct Expectation: Hashable, Sendable, CustomStringConvertible {
        let code: ValidationCode
        let path: String
        var description: String { "\(code.rawValue) at \(path)" }
    }

    var testDescription: String { rule }

    /// `resource` must produce exactly `code` at `path`.
    init(
        _ rule: String, _ resource: JSON, _ code: ValidationCode, at path: String,
        profile: ValidationProfile = .caresync
    ) {
        self.rule = rule
        self.input = .resource(resource)
        self.expected = [Expectation(code: code, path: path)]
        self.profile = profile
    }

    /// `bytes` must produce exactly `code` at `path`.
    init(_ rule: String, bytes: [UInt8], _ code: ValidationCode, at path: String) {
        self.rule = rule
        self.input = .bytes(bytes)
        self.expected = [Expectation(code: code, path: path)]
    }

    func with(_ change: (inout BadInput) -> Void) -> BadInput {
        var copy = self
        change(&copy)
        return copy
    }

    func report() -> ValidationReport {
        let validator = ResourceValidator(profile: profile, limits: limits, requiresServerMetadata: requiresServerMetadata)
        switch input {
        case .bytes(let bytes):
            return validator.validate(bytes: bytes, expectedType: expectedType, expectedID: expectedID)
        case .resource(let resource):
            // Through the byte entry point, as the daemon and the CLI use it.
            return validator.validate(bytes: resource.serialized(), expectedType: expectedType, expectedID: expectedID)
        }
    }
}

private let carePlan = SampleResources.carePlan
private let encounter = SampleResources.encounter
private let relatedPerson = SampleResources.relatedPerson
private let patient = SampleResources.patient
private let nhsSystem: JSON = "https://fhir.nhs.uk/Id/nhs-number"

@Suite("Resource validator: one bad input per rule")
struct ResourceValidatorTests {
    static let documentCases: [BadInput] = [
        BadInput("not JSON", bytes: Array(#"{"resourceType": "CarePlan","#.utf8), .notJSON, at: "Resource"),
        BadInput("invalid UTF-8", bytes: Array(#"{"resourceType":"CarePlan","title":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8), .invalidUTF8, at: "Resource"),
        BadInput("duplicate JSON key", bytes: Array(#"{"resourceType":"CarePlan","status":"active","status":"draft"}"#.utf8), .duplicateKey, at: "Resource"),
        BadInput("over the size limit", carePlan, .tooLarge, at: "Resource").with { $0.limits = ValidationLimits(maxBytes: 256) },
        BadInput("nested too deeply", carePlan, .tooDeep, at: "Resource").with { $0.limits = ValidationLimits(maxDepth: 4) },
        BadInput("a JSON array, not a resource", bytes: Array("[1, 2]".utf8), .notAResource, at: "Resource"),
    ]

    static let identityCases: [BadInput] = [
        BadInput("resourceType missing", carePlan.set("resourceType", to: nil), .resourceTypeMissing, at: "Resource.resourceType"),
        BadInput("resourceType not a string", carePlan.set("resourceType", to: 1), .resourceTypeMissing, at: "Resource.resourceType"),
        BadInput("resourceType other than expected", carePlan, .resourceTypeMismatch, at: "Encounter.resourceType")
            .with { $0.expectedType = .encounter },
        BadInput("resourceType caresync does not handle", carePlan.set("resourceType", to: "Observation"), .resourceTypeUnsupported, at: "Resource.resourceType"),
        BadInput("id missing where server metadata is required", carePlan.set("id", to: nil), .idMissing, at: "CarePlan.id")
            .with { $0.requiresServerMetadata = true },
        BadInput("id missing where the URL names one", carePlan.set("id", to: nil), .idMissing, at: "CarePlan.id")
            .with { $0.expectedID = "cp-1" },
        BadInput("id with characters outside [A-Za-z0-9-.]", carePlan.set("id", to: "cp_1"), .idInvalid, at: "CarePlan.id"),
        BadInput("id longer than 64 characters", carePlan.set("id", to: .string(String(repeating: "a", count: 65))), .idInvalid, at: "CarePlan.id"),
        BadInput("id not a string", carePlan.set("id", to: 7), .idInvalid, at: "CarePlan.id"),
        BadInput("id differs from the URL id", carePlan, .idMismatch, at: "CarePlan.id").with { $0.expectedID = "cp-2" },
        BadInput("meta.versionId missing", carePlan.set("meta", "versionId", to: nil), .versionIDMissing, at: "CarePlan.meta.versionId")
            .with { $0.requiresServerMetadata = true },
        BadInput("meta.lastUpdated missing", carePlan.set("meta", "lastUpdated", to: nil), .lastUpdatedMissing, at: "CarePlan.meta.lastUpdated")
            .with { $0.requiresServerMetadata = true },
        BadInput("meta.lastUpdated a date, not an instant", carePlan.set("meta", "lastUpdated", to: "2025-04-01"), .invalidValue, at: "CarePlan.meta.lastUpdated"),
        BadInput("meta.lastUpdated without a zone", carePlan.set("meta", "lastUpdated", to: "2025-04-01T09:30:00"), .invalidValue, at: "CarePlan.meta.lastUpdated"),
    ]

    static let requiredCases: [BadInput] = [
        BadInput("CarePlan.status missing", carePlan.set("status", to: nil), .requiredMissing, at: "CarePlan.status"),
        BadInput("CarePlan.intent missing", carePlan.set("intent", to: nil), .requiredMissing, at: "CarePlan.intent"),
        BadInput("CarePlan.subject missing", carePlan.set("subject", to: nil), .requiredMissing, at: "CarePlan.subject"),
        BadInput("activity.detail.status missing", carePlan.set("activity", 1, "detail", "status", to: nil), .requiredMissing, at: "CarePlan.activity[1].detail.status"),
        BadInput("Encounter.status missing", encounter.set("status", to: nil), .requiredMissing, at: "Encounter.status"),
        BadInput("Encounter.class missing", encounter.set("class", to: nil), .requiredMissing, at: "Encounter.class"),
        BadInput("Encounter.subject missing (caresync)", encounter.set("subject", to: nil), .requiredMissing, at: "Encounter.subject"),
        BadInput("Encounter.statusHistory.period missing", encounter.set("statusHistory", 0, "period", to: nil), .requiredMissing, at: "Encounter.statusHistory[0].period"),
        BadInput("RelatedPerson.patient missing", relatedPerson.set("patient", to: nil), .requiredMissing, at: "RelatedPerson.patient"),
        BadInput("Patient.link.type missing", patient.set("link", to: [["other": ["reference": "Patient/p2"]]]), .requiredMissing, at: "Patient.link[0].type"),
        BadInput("Annotation.text missing", carePlan.set("note", 0, "text", to: nil).set("note", 0, "time", to: "2025-04-01"), .requiredMissing, at: "CarePlan.note[0].text"),
        BadInput("Extension.url missing", carePlan.set("extension", to: [["valueString": "x"]]), .requiredMissing, at: "CarePlan.extension[0].url"),
        BadInput("Narrative.div missing", patient.set("text", "div", to: nil), .requiredMissing, at: "Patient.text.div"),
    ]

    static let valueSetCases: [BadInput] = [
        BadInput("CarePlan.status outside request-status", carePlan.set("status", to: "actve"), .codeNotInValueSet, at: "CarePlan.status"),
        BadInput("CarePlan.intent outside care-plan-intent", carePlan.set("intent", to: "directive"), .codeNotInValueSet, at: "CarePlan.intent"),
        BadInput("activity.detail.status outside care-plan-activity-status", carePlan.set("activity", 0, "detail", "status", to: "done"), .codeNotInValueSet, at: "CarePlan.activity[0].detail.status"),
        BadInput("activity.detail.kind outside care-plan-activity-kind", carePlan.set("activity", 0, "detail", "kind", to: "Procedure"), .codeNotInValueSet, at: "CarePlan.activity[0].detail.kind"),
        BadInput("Encounter.status R5 code 'completed'", encounter.set("status", to: "completed"), .codeNotInValueSet, at: "Encounter.status"),
        BadInput("Encounter.statusHistory.status outside encounter-status", encounter.set("statusHistory", 0, "status", to: "waiting"), .codeNotInValueSet, at: "Encounter.statusHistory[0].status"),
        BadInput("Encounter.class outside v3 ActEncounterCode", encounter.set("class", "code", to: "OUTPT"), .codeNotInValueSet, at: "Encounter.class.code"),
        BadInput("RelatedPerson.gender outside administrative-gender", relatedPerson.set("gender", to: "f"), .codeNotInValueSet, at: "RelatedPerson.gender"),
        BadInput("Patient.gender is case-sensitive", patient.set("gender", to: "Male"), .codeNotInValueSet, at: "Patient.gender"),
        BadInput("Identifier.use outside identifier-use", carePlan.set("identifier", 0, "use", to: "primary"), .codeNotInValueSet, at: "CarePlan.identifier[0].use"),
        BadInput("ContactPoint.system outside contact-point-system", relatedPerson.set("telecom", 0, "system", to: "mobile"), .codeNotInValueSet, at: "RelatedPerson.telecom[0].system"),
        BadInput("ContactPoint.use outside contact-point-use", relatedPerson.set("telecom", 0, "use", to: "personal"), .codeNotInValueSet, at: "RelatedPerson.telecom[0].use"),
        BadInput("HumanName.use outside name-use", relatedPerson.set("name", 0, "use", to: "legal"), .codeNotInValueSet, at: "RelatedPerson.name[0].use"),
        BadInput("Timing.repeat.periodUnit outside units-of-time", carePlan.set("activity", 0, "detail", "scheduledTiming", "repeat", "periodUnit", to: "week"), .codeNotInValueSet, at: "CarePlan.activity[0].detail.scheduledTiming.repeat.periodUnit"),
        BadInput("Narrative.status outside narrative-status", patient.set("text", "status", to: "auto"), .codeNotInValueSet, at: "Patient.text.status"),
        BadInput("Quantity.comparator outside quantity-comparator", carePlan.set("extension", to: [["url": "https://example.org/x", "valueQuantity": ["value": 1, "comparator": "=="]]]), .codeNotInValueSet, at: "CarePlan.extension[0].valueQuantity.comparator"),
        BadInput("Patient.link.type outside link-type", patient.set("link", to: [["other": ["reference": "Patient/p2"], "type": "same"]]), .codeNotInValueSet, at: "Patient.link[0].type"),
    ]

    static let nhsNumberCases: [BadInput] = [
        BadInput("NHS number of 9 digits", carePlan.set("subject", "identifier", "value", to: "943476591"), .nhsNumberLength, at: "CarePlan.subject.identifier.value"),
        BadInput("NHS number with spaces", carePlan.set("subject", "identifier", "value", to: "943 476 5919"), .nhsNumberSpaces, at: "CarePlan.subject.identifier.value"),
        BadInput("NHS number with a bad check digit", carePlan.set("subject", "identifier", "value", to: "9434765918"), .nhsNumberCheckDigit, at: "CarePlan.subject.identifier.value"),
        BadInput("NHS number with a bad check digit (r4 profile too)", carePlan.set("subject", "identifier", "value", to: "9434765918"), .nhsNumberCheckDigit, at: "CarePlan.subject.identifier.value", profile: .r4),
        BadInput("NHS number of ten identical digits", carePlan.set("subject", "identifier", "value", to: "4444444444"), .nhsNumberSameDigits, at: "CarePlan.subject.identifier.value"),
        BadInput("NHS number with a letter", carePlan.set("subject", "identifier", "value", to: "94347659A9"), .nhsNumberNotDigits, at: "CarePlan.subject.identifier.value"),
        BadInput("NHS number system over http://", carePlan.set("subject", "identifier", "system", to: "http://fhir.nhs.uk/Id/nhs-number"), .nhsNumberSystem, at: "CarePlan.subject.identifier.system"),
        BadInput("NHS number system with a trailing slash", encounter.set("subject", "identifier", "system", to: "https://fhir.nhs.uk/Id/nhs-number/"), .nhsNumberSystem, at: "Encounter.subject.identifier.system"),
        BadInput("NHS number system of the retired fhir.nhs.net", patient.set("identifier", 0, "system", to: "https://fhir.nhs.net/Id/nhs-number"), .nhsNumberSystem, at: "Patient.identifier[0].system"),
        BadInput("NHS number under its OID instead of the FHIR system", patient.set("identifier", 0, "system", to: "urn:oid:2.16.840.1.113883.2.1.4.1"), .nhsNumberSystem, at: "Patient.identifier[0].system"),
        BadInput("NHS number system misspelt in a conditional reference", relatedPerson.set("patient", "reference", to: "Patient?identifier=http://fhir.nhs.uk/Id/nhs-number|9434765919"), .nhsNumberSystem, at: "RelatedPerson.patient.reference"),
        BadInput("bad NHS number in a conditional reference", relatedPerson.set("patient", "reference", to: "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765918"), .nhsNumberCheckDigit, at: "RelatedPerson.patient.reference"),
        BadInput("two NHS numbers on one subject", carePlan.set("subject", "reference", to: "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009"), .nhsNumberConflict, at: "CarePlan.subject.reference"),
        BadInput("two NHS numbers on one Patient", patient.set("identifier", 1, to: ["system": nhsSystem, "value": "9000000009"]), .nhsNumberConflict, at: "Patient.identifier[1].value"),
        BadInput("subject without an NHS number", carePlan.set("subject", "identifier", to: nil), .nhsNumberMissing, at: "CarePlan.subject.identifier"),
        BadInput("Patient without an NHS number", patient.set("identifier", 0, "system", to: "https://trust.example.nhs.uk/Id/mrn"), .nhsNumberMissing, at: "Patient.identifier"),
        BadInput("subject pointing at a Group", carePlan.set("subject", "reference", to: "Group/g1"), .subjectNotPatient, at: "CarePlan.subject.reference"),
        BadInput("subject typed as a Group", carePlan.set("subject", "type", to: "Group"), .subjectNotPatient, at: "CarePlan.subject.type"),
    ]

    static let periodCases: [BadInput] = [
        BadInput("period end a day before start", carePlan.set("period", "end", to: "2025-03-31"), .periodEndBeforeStart, at: "CarePlan.period"),
        BadInput("period end in a month wholly before the start day", carePlan.set("period", "start", to: "2025-04-15").set("period", "end", to: "2025-03"), .periodEndBeforeStart, at: "CarePlan.period"),
        BadInput("period end a day wholly before the start month", carePlan.set("period", "start", to: "2025-04").set("period", "end", to: "2025-03-31"), .periodEndBeforeStart, at: "CarePlan.period"),
        BadInput("period end before start once zones are applied", encounter.set("period", "start", to: "2025-04-01T10:00:00Z").set("period", "end", to: "2025-04-01T10:30:00+01:00"), .periodEndBeforeStart, at: "Encounter.period"),
        BadInput("period end before start in statusHistory", encounter.set("statusHistory", 0, "period", "end", to: "2025-04-01T08:59:59Z"), .periodEndBeforeStart, at: "Encounter.statusHistory[0].period"),
    ]

    static let structureCases: [BadInput] = [
        BadInput("unknown element", carePlan.set("priority", to: "high"), .unknownElement, at: "CarePlan.priority"),
        BadInput("R5 element CarePlan.custodian", carePlan.set("custodian", to: ["reference": "Practitioner/1"]), .unknownElement, at: "CarePlan.custodian"),
        BadInput("R5 element CarePlan.activity.performedActivity", carePlan.set("activity", 0, "performedActivity", to: [["concept": ["text": "x"]]]), .unknownElement, at: "CarePlan.activity[0].performedActivity"),
        BadInput("R5 element Encounter.actualPeriod", encounter.set("actualPeriod", to: ["start": "2025-04-01"]), .unknownElement, at: "Encounter.actualPeriod"),
        BadInput("unknown element inside a datatype", carePlan.set("subject", "kind", to: "patient"), .unknownElement, at: "CarePlan.subject.kind"),
        BadInput("modifierExtension on the resource", carePlan.set("modifierExtension", to: [["url": "https://example.org/x", "valueBoolean": true]]), .modifierExtension, at: "CarePlan.modifierExtension"),
        BadInput("modifierExtension on a backbone element", carePlan.set("activity", 0, "modifierExtension", to: [["url": "https://example.org/x", "valueBoolean": true]]), .modifierExtension, at: "CarePlan.activity[0].modifierExtension"),
        BadInput("modifierExtension on a datatype, where R4 has none", carePlan.set("identifier", 0, "modifierExtension", to: [["url": "https://example.org/x", "valueBoolean": true]]), .unknownElement, at: "CarePlan.identifier[0].modifierExtension"),
        BadInput("choice element with a type it does not allow", carePlan.set("activity", 0, "detail", "scheduledDateTime", to: "2025-04-01"), .unknownElement, at: "CarePlan.activity[0].detail.scheduledDateTime"),
        BadInput("two values for one choice element", carePlan.set("activity", 0, "detail", "scheduledString", to: "weekly"), .choiceMultiple, at: "CarePlan.activity[0].detail.scheduledString"),
        BadInput("Extension value of an unknown type", carePlan.set("extension", to: [["url": "https://example.org/x", "valueInteger64": 1]]), .unknownElement, at: "CarePlan.extension[0].valueInteger64"),
        BadInput("a list written as one object", carePlan.set("identifier", to: ["system": "https://trust.example.nhs.uk/Id/careplan", "value": "CP-1"]), .wrongJSONType, at: "CarePlan.identifier"),
        BadInput("one value written as a list", carePlan.set("subject", to: [SampleResources.nhsSubject]), .wrongJSONType, at: "CarePlan.subject"),
        BadInput("empty array", carePlan.set("category", to: []), .emptyValue, at: "CarePlan.category"),
        BadInput("empty object", carePlan.set("encounter", to: .object(JSONObject())), .emptyValue, at: "CarePlan.encounter"),
        BadInput("empty string", carePlan.set("description", to: ""), .emptyValue, at: "CarePlan.description"),
        BadInput("null value", carePlan.set("title", to: .null), .nullValue, at: "CarePlan.title"),
    ]

    static let primitiveCases: [BadInput] = [
        BadInput("code given as a number", carePlan.set("status", to: 1), .wrongJSONType, at: "CarePlan.status"),
        BadInput("boolean given as a string", carePlan.set("activity", 0, "detail", "doNotPerform", to: "false"), .wrongJSONType, at: "CarePlan.activity[0].detail.doNotPerform"),
        BadInput("decimal given as a string", carePlan.set("activity", 0, "detail", "scheduledTiming", "repeat", "period", to: "1"), .wrongJSONType, at: "CarePlan.activity[0].detail.scheduledTiming.repeat.period"),
        BadInput("positiveInt with a fraction", carePlan.set("activity", 0, "detail", "scheduledTiming", "repeat", "frequency", to: .number(JSONNumber("1.5")!)), .invalidValue, at: "CarePlan.activity[0].detail.scheduledTiming.repeat.frequency"),
        BadInput("positiveInt of zero", carePlan.set("activity", 0, "detail", "scheduledTiming", "repeat", "frequency", to: 0), .invalidValue, at: "CarePlan.activity[0].detail.scheduledTiming.repeat.frequency"),
        BadInput("integer beyond 32 bits", patient.set("multipleBirthInteger", to: 2_147_483_648), .invalidValue, at: "Patient.multipleBirthInteger"),
        BadInput("dateTime with month 13", carePlan.set("created", to: "2025-13-01"), .invalidValue, at: "CarePlan.created"),
        BadInput("dateTime on 30 February", carePlan.set("created", to: "2025-02-30"), .invalidValue, at: "CarePlan.created"),
        BadInput("dateTime without seconds", carePlan.set("created", to: "2025-04-01T10:00Z"), .invalidValue, at: "CarePlan.created"),
        BadInput("dateTime with a time but no zone", carePlan.set("created", to: "2025-04-01T10:00:00"), .invalidValue, at: "CarePlan.created"),
        BadInput("date with a time", patient.set("birthDate", to: "1970-01-01T00:00:00Z"), .invalidValue, at: "Patient.birthDate"),
        BadInput("time of 25 o'clock", carePlan.set("activity", 0, "detail", "scheduledTiming", "repeat", "timeOfDay", 0, to: "25:00:00"), .invalidValue, at: "CarePlan.activity[0].detail.scheduledTiming.repeat.timeOfDay[0]"),
        BadInput("code with a leading space", carePlan.set("status", to: " active"), .invalidValue, at: "CarePlan.status"),
        BadInput("uri with a space", carePlan.set("identifier", 0, "system", to: "https://trust.example.nhs.uk/Id/care plan"), .invalidValue, at: "CarePlan.identifier[0].system"),
        BadInput("string with a control character", carePlan.set("title", to: "Heart\u{01}failure"), .invalidValue, at: "CarePlan.title"),
        BadInput("oid without urn:oid:", carePlan.set("extension", to: [["url": "https://example.org/x", "valueOid": "1.2.3"]]), .invalidValue, at: "CarePlan.extension[0].valueOid"),
        BadInput("base64Binary that is not base64", relatedPerson.set("photo", 0, "data", to: "not base64!"), .invalidValue, at: "RelatedPerson.photo[0].data"),
        BadInput("narrative that is not an XHTML div", patient.set("text", "div", to: "<p>John</p>"), .invalidValue, at: "Patient.text.div"),
    ]

    static let primitiveExtensionCases: [BadInput] = [
        BadInput("primitive extension without such an element", carePlan.set("_priority", to: ["extension": [["url": "https://example.org/x", "valueString": "x"]]]), .primitiveExtensionInvalid, at: "CarePlan._priority"),
        BadInput("primitive extension on a complex element", carePlan.set("_subject", to: ["extension": [["url": "https://example.org/x", "valueString": "x"]]]), .primitiveExtensionInvalid, at: "CarePlan._subject"),
        BadInput("primitive extension that is not an object", carePlan.set("_status", to: "x"), .primitiveExtensionInvalid, at: "CarePlan._status"),
        BadInput("primitive extension list not parallel to its values", relatedPerson.set("name", 0, "_given", to: [.null, ["id": "g2"]]), .primitiveExtensionInvalid, at: "RelatedPerson.name[0]._given"),
        BadInput("primitive extension with an unknown member", carePlan.set("_status", to: ["note": "x"]), .unknownElement, at: "CarePlan.status.note"),
    ]

    static let listKeyCases: [BadInput] = [
        BadInput("two activities with one element id", carePlan.set("activity", 1, "id", to: "act-1"), .duplicateElementID, at: "CarePlan.activity[1].id"),
        BadInput("two identifiers with one system|value", carePlan.set("identifier", 1, to: ["system": "https://trust.example.nhs.uk/Id/careplan", "value": "CP-1", "use": "old"]), .duplicateIdentifier, at: "CarePlan.identifier[1]"),
        BadInput("two contained resources with one id", carePlan.set("contained", to: [["resourceType": "Goal", "id": "g"], ["resourceType": "Goal", "id": "g"]]), .duplicateElementID, at: "CarePlan.contained[1].id"),
    ]

    static let containedCases: [BadInput] = [
        BadInput("contained CarePlan validated fully", carePlan.set("contained", to: [carePlan.set("id", to: "inner").set("meta", to: nil).set("status", to: "actve")]), .codeNotInValueSet, at: "CarePlan.contained[0].status"),
        BadInput("contained resource without an id", carePlan.set("contained", to: [["resourceType": "Goal"]]), .containedInvalid, at: "CarePlan.contained[0]"),
        BadInput("contained resource without a resourceType", carePlan.set("contained", to: [["id": "g"]]), .containedInvalid, at: "CarePlan.contained[0]"),
        BadInput("contained value that is not an object", carePlan.set("contained", to: ["Goal/g"]), .containedInvalid, at: "CarePlan.contained[0]"),
        BadInput("contained resource with a bad id", carePlan.set("contained", to: [["resourceType": "Goal", "id": "g 1"]]), .idInvalid, at: "CarePlan.contained[0].id"),
        BadInput("contained resource containing another (dom-2)", carePlan.set("contained", to: [patient.set("contained", to: [["resourceType": "Goal", "id": "g"]])]), .invariantFailed, at: "CarePlan.contained[0].contained"),
        BadInput("contained resource with a versionId (dom-4)", carePlan.set("contained", to: [patient.set("meta", to: ["versionId": "2"])]), .invariantFailed, at: "CarePlan.contained[0].meta"),
        BadInput("local reference to no contained resource (ref-1)", carePlan.set("author", to: ["reference": "#nobody"]), .invariantFailed, at: "CarePlan.author.reference"),
    ]

    static let invariantCases: [BadInput] = [
        BadInput("extension with a value and nested extensions (ext-1)", carePlan.set("extension", to: [["url": "https://example.org/x", "valueString": "x", "extension": [["url": "a", "valueString": "y"]]]]), .invariantFailed, at: "CarePlan.extension[0]"),
        BadInput("extension with neither a value nor nested extensions (ext-1)", carePlan.set("extension", to: [["url": "https://example.org/x"]]), .invariantFailed, at: "CarePlan.extension[0]"),
        BadInput("contact point value without a system (cpt-2)", relatedPerson.set("telecom", 0, "system", to: nil), .invariantFailed, at: "RelatedPerson.telecom[0]"),
        BadInput("activity with both a reference and a detail (cpl-3)", carePlan.set("activity", 0, "reference", to: ["reference": "ServiceRequest/1"]), .invariantFailed, at: "CarePlan.activity[0]"),
        BadInput("SimpleQuantity with a comparator (sqty-1)", carePlan.set("activity", 0, "detail", "dailyAmount", "comparator", to: "<"), .invariantFailed, at: "CarePlan.activity[0].detail.dailyAmount"),
        BadInput("repeat with a period but no periodUnit (tim-2)", carePlan.set("activity", 0, "detail", "scheduledTiming", "repeat", "periodUnit", to: nil), .invariantFailed, at: "CarePlan.activity[0].detail.scheduledTiming.repeat"),
        BadInput("patient contact with no details (pat-1)", patient.set("contact", to: [["gender": "female"]]), .invariantFailed, at: "Patient.contact[0]"),
        BadInput("quantity with a code but no system (qty-3)", carePlan.set("activity", 0, "detail", "dailyAmount", "code", to: "{tbl}"), .invariantFailed, at: "CarePlan.activity[0].detail.dailyAmount"),
    ]

    static let caresyncIdentifierCases: [BadInput] = [
        BadInput("business identifier without a system", carePlan.set("identifier", 0, "system", to: nil), .identifierIncomplete, at: "CarePlan.identifier[0]"),
        BadInput("business identifier without a value", encounter.set("identifier", to: [["system": "https://trust.example.nhs.uk/Id/encounter"]]), .identifierIncomplete, at: "Encounter.identifier[0]"),
        BadInput("business identifier with a relative system", carePlan.set("identifier", 0, "system", to: "careplans"), .identifierSystemInvalid, at: "CarePlan.identifier[0].system"),
    ]

    static let allCases: [BadInput] =
        documentCases + identityCases + requiredCases + valueSetCases + nhsNumberCases + periodCases + structureCases
        + primitiveCases + primitiveExtensionCases + listKeyCases + containedCases + invariantCases + caresyncIdentifierCases

    @Test("each bad input gives exactly the documented code at the right path", arguments: allCases)
    func badInput(_ input: BadInput) {
        let report = input.report()
        let found = Set(report.issues.map { BadInput.Expectation(code: $0.code, path: $0.path) })
        #expect(found == input.expected, "\(report.issues.map(\.description).joined(separator: "\n"))")
        #expect(!report.isValid)
    }

    @Test("every message names the field it is about, and never quotes an NHS number", arguments: allCases)
    func messages(_ input: BadInput) {
        let documentCodes: Set<ValidationCode> = [.notJSON, .invalidUTF8, .duplicateKey, .tooLarge, .tooDeep, .notAResource]
        for issue in input.report().issues {
            if !documentCodes.contains(issue.code) {
                #expect(issue.message.contains(issue.path), "\(issue)")
            }
            for number in ["9434765919", "9434765918", "943476591", "4444444444", "94347659A9", "9000000009"] {
                #expect(!issue.message.contains(number), "\(issue)")
            }
            #expect(issue.message.hasSuffix("."), "\(issue)")
        }
    }

    @Test("the sample resources are valid under both profiles, with server metadata where they carry it")
    func samplesAreValid() {
        for profile in ValidationProfile.allCases {
            let validator = ResourceValidator(profile: profile)
            for sample in [carePlan, encounter, relatedPerson, patient] {
                let report = validator.validate(bytes: sample.serialized())
                #expect(report.isValid, "\(profile): \(report.issues)")
            }
        }
        let strict = ResourceValidator(requiresServerMetadata: true)
        #expect(strict.validate(bytes: carePlan.serialized(), expectedType: .carePlan, expectedID: "cp-1").isValid)
    }

    @Test("every issue in a resource is reported, not just the first")
    func reportsEveryIssue() {
        let resource = carePlan.set("status", to: "actve").set("intent", to: nil).set("activity", 1, "detail", "status", to: "done")
            .set("subject", "identifier", "value", to: "9434765918").set("period", "end", to: "2024-01-01")
        let codes = ResourceValidator().validate(bytes: resource.serialized()).issues.map(\.code)
        #expect(
            Set(codes) == [.codeNotInValueSet, .requiredMissing, .nhsNumberCheckDigit, .periodEndBeforeStart]
                && codes.count == 5, "\(codes)")
    }

    @Test("a parsed tree is held to the size of its compact form and to the depth limit, exactly")
    func treeLimitsAreExact() {
        // The bell makes the title invalid (reported after the limits pass) and exercises \u00XX escaping.
        let resource = carePlan.set("title", to: "Quote \" backslash \\ tab \t bell \u{07} é ✓")
        let size = resource.serialized(.compact).count
        let depth = resource.depth
        func codes(_ limits: ValidationLimits, fromBytes: Bool = false) -> [ValidationCode] {
            let validator = ResourceValidator(limits: limits)
            return (fromBytes ? validator.validate(bytes: resource.serialized()) : validator.validate(resource)).issues.map(\.code)
        }
        #expect(codes(ValidationLimits(maxBytes: size)) == [.invalidValue])
        #expect(codes(ValidationLimits(maxBytes: size - 1)) == [.tooLarge])
        #expect(ResourceValidator(limits: ValidationLimits(maxBytes: size - 1)).validate(resource).issues.first?.message
            .contains("\(size) bytes") == true)
        #expect(codes(ValidationLimits(maxDepth: depth)) == [.invalidValue])
        #expect(codes(ValidationLimits(maxDepth: depth - 1)) == [.tooDeep])
        #expect(codes(ValidationLimits(maxDepth: depth), fromBytes: true) == [.invalidValue])
        #expect(codes(ValidationLimits(maxDepth: depth - 1), fromBytes: true) == [.tooDeep])
    }

    @Test("validating a parsed tree agrees with validating its bytes")
    func treeAndBytesAgree() {
        for input in Self.allCases {
            guard case .resource(let resource) = input.input else { continue }
            let validator = ResourceValidator(profile: input.profile, limits: input.limits, requiresServerMetadata: input.requiresServerMetadata)
            let fromTree = validator.validate(resource, expectedType: input.expectedType, expectedID: input.expectedID)
            // Same codes at the same paths (the depth message words it differently: no line and column).
            let key = { (issues: [ValidationIssue]) in issues.map { "\($0.code.rawValue) \($0.path)" } }
            #expect(key(fromTree.issues) == key(input.report().issues), "\(input.rule)")
        }
    }
}

@Suite("Resource validator: what is accepted, and where the profiles differ")
struct ResourceValidatorAcceptanceTests {
    private func issues(_ resource: JSON, _ profile: ValidationProfile = .caresync) -> [ValidationIssue] {
        ResourceValidator(profile: profile).validate(bytes: resource.serialized()).issues
    }

    @Test("the r4 profile leaves out the caresync sync rules")
    func r4LeavesOutSyncRules() {
        let noNHSNumber = carePlan.set("subject", to: ["reference": "Group/g1"])
        #expect(issues(noNHSNumber, .r4).isEmpty)
        #expect(Set(issues(noNHSNumber).map(\.code)) == [.nhsNumberMissing, .subjectNotPatient])
        #expect(issues(encounter.set("subject", to: nil), .r4).isEmpty)
        let duplicateIdentifiers = carePlan.set("identifier", 1, to: carePlan["identifier"]!.arrayValue![0])
        #expect(issues(duplicateIdentifiers, .r4).isEmpty)
        #expect(issues(carePlan.set("subject", "identifier", "system", to: "http://fhir.nhs.uk/Id/nhs-number"), .r4).map(\.code) == [])
        #expect(issues(carePlan.set("identifier", 0, "system", to: nil), .r4).isEmpty)
    }

    @Test("Encounter.class codings from other systems pass (the binding is extensible)")
    func encounterClassOtherSystem() {
        let resource = encounter.set("class", to: ["system": "http://fhir.mimic.mit.edu/CodeSystem/admission-class", "code": "URGENT"])
        #expect(issues(resource).isEmpty)
        for code in ["AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS", "VR"] {
            #expect(issues(encounter.set("class", "code", to: .string(code))).isEmpty, "\(code)")
        }
    }

    @Test("periods of different precision that overlap are accepted", arguments: [
        ("2025-04-15", "2025-04"), ("2025-04", "2025-04-01"), ("2025", "2025-01-01T00:00:00Z"),
        ("2025-04-01T10:00:00+01:00", "2025-04-01T09:30:00Z"), ("2025-04-01", "2025-03-31T23:00:00-05:00"),
        ("2025-04-01T09:00:00Z", "2025-04-01T09:00:00Z"),
    ])
    func overlappingPeriods(start: String, end: String) {
        #expect(issues(encounter.set("period", to: ["start": .string(start), "end": .string(end)])).isEmpty)
    }

    @Test("primitive extensions beside real elements are accepted, with or without a value")
    func primitiveExtensions() {
        let ext: JSON = ["extension": [["url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"]]]
        #expect(issues(patient.set("_birthDate", to: ext)).isEmpty)
        #expect(issues(patient.set("birthDate", to: nil).set("_birthDate", to: ext)).isEmpty)
        #expect(issues(relatedPerson.set("name", 0, "given", to: ["Jane", .null]).set("name", 0, "_given", to: [.null, ext])).isEmpty)
        #expect(issues(carePlan.set("_status", to: ["id": "s1"])).isEmpty)
    }

    @Test("contained resources of other types are checked only for resourceType and id")
    func otherContainedTypes() {
        let resource = carePlan.set("contained", to: [["resourceType": "Goal", "id": "g1", "notAGoalElement": true]])
            .set("goal", to: [["reference": "#g1"]])
        #expect(issues(resource).isEmpty)
    }

    @Test("every value[x] type of an Extension is accepted")
    func extensionValueTypes() {
        let values: [String: JSON] = [
            "valueBase64Binary": "aGVsbG8=", "valueBoolean": true, "valueCanonical": "http://example.org/vs",
            "valueCode": "a", "valueDate": "2025", "valueDateTime": "2025-04-01T10:00:00.123+14:00", "valueDecimal": 1,
            "valueId": "a-1", "valueInstant": "2025-04-01T10:00:00Z", "valueInteger": -1, "valueMarkdown": "*x*",
            "valueOid": "urn:oid:1.2.3", "valuePositiveInt": 1, "valueString": "x", "valueTime": "23:59:60",
            "valueUnsignedInt": 0, "valueUri": "urn:x", "valueUrl": "https://example.org",
            "valueUuid": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
            "valueAddress": ["city": "Leeds"], "valueAge": ["value": 3, "system": "http://unitsofmeasure.org", "code": "a"],
            "valueAnnotation": ["text": "x"], "valueAttachment": ["title": "x"], "valueCodeableConcept": ["text": "x"],
            "valueCoding": ["code": "x"], "valueContactPoint": ["system": "email", "value": "a@example.org"],
            "valueCount": ["value": 1], "valueDistance": ["value": 1], "valueDuration": ["value": 1],
            "valueHumanName": ["family": "x"], "valueIdentifier": ["value": "x"], "valueMoney": ["value": 1, "currency": "GBP"],
            "valuePeriod": ["start": "2025"], "valueQuantity": ["value": 1, "comparator": "<"],
            "valueRange": ["low": ["value": 1], "high": ["value": 2]], "valueRatio": ["numerator": ["value": 1], "denominator": ["value": 2]],
            "valueReference": ["display": "x"],
            "valueSampledData": ["origin": ["value": 0], "period": 1, "dimensions": 1, "data": "1 2"],
            "valueSignature": ["type": [["code": "x"]], "when": "2025-04-01T10:00:00Z", "who": ["display": "x"]],
            "valueTiming": ["event": ["2025-04-01"], "repeat": ["boundsPeriod": ["start": "2025"], "when": ["MORN"], "offset": 30]],
            "valueContactDetail": ["name": "x"], "valueContributor": ["type": "author", "name": "x"],
            "valueDataRequirement": ["type": "Patient", "codeFilter": [["path": "code"]], "sort": [["path": "date", "direction": "descending"]]],
            "valueExpression": ["language": "text/fhirpath", "expression": "true"],
            "valueParameterDefinition": ["use": "in", "type": "string"], "valueRelatedArtifact": ["type": "citation"],
            "valueTriggerDefinition": ["type": "periodic", "timingTiming": ["code": ["text": "x"]]],
            "valueUsageContext": ["code": ["code": "age"], "valueQuantity": ["value": 1]],
            "valueDosage": ["text": "x", "doseAndRate": [["doseQuantity": ["value": 1]]]], "valueMeta": ["versionId": "1"],
        ]
        #expect(values.count == 50)
        for (name, value) in values {
            let resource = carePlan.set("extension", to: [["url": "https://example.org/x", name: value]])
            #expect(issues(resource).isEmpty, "\(name): \(issues(resource))")
        }
    }
}
