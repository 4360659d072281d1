/// The required-strength R4 (4.0.1) value sets caresync checks, each as published at
/// `http://hl7.org/fhir/R4/valueset-<name>.html`.
///
/// Not checked, although R4 binds them as required: `all-types` (DataRequirement.type,
/// ParameterDefinition.type), `currencies` (Money.currency) and `mimetypes` (Attachment.contentType,
/// Signature formats) — open-ended grammars rather than short lists; the primitive `code` form still holds.
extension ValueSet {
    static let requestStatus = ValueSet(
        "request-status", ["draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"])
    static let carePlanIntent = ValueSet("care-plan-intent", ["proposal", "plan", "order", "option"])
    static let carePlanActivityKind = ValueSet(
        "care-plan-activity-kind",
        [
            "Appointment", "CommunicationRequest", "DeviceRequest", "MedicationRequest", "NutritionOrder", "Task",
            "ServiceRequest", "VisionPrescription",
        ])
    static let carePlanActivityStatus = ValueSet(
        "care-plan-activity-status",
        [
            "not-started", "scheduled", "in-progress", "on-hold", "completed", "cancelled", "stopped", "unknown",
            "entered-in-error",
        ])
    static let encounterStatus = ValueSet(
        "encounter-status",
        [
            "planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled", "entered-in-error",
            "unknown",
        ])
    static let encounterLocationStatus = ValueSet(
        "encounter-location-status", ["planned", "active", "reserved", "completed"])
    /// v3 ActEncounterCode, the codes of `http://terminology.hl7.org/CodeSystem/v3-ActCode` that R4 binds to
    /// `Encounter.class` (extensible: codings from other systems pass).
    static let encounterClass = ValueSet(
        "v3-ActEncounterCode", system: "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        ["AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS", "VR"])
    static let administrativeGender = ValueSet("administrative-gender", ["male", "female", "other", "unknown"])
    static let linkType = ValueSet("link-type", ["replaced-by", "replaces", "refer", "seealso"])

    static let identifierUse = ValueSet("identifier-use", ["usual", "official", "temp", "secondary", "old"])
    static let contactPointSystem = ValueSet(
        "contact-point-system", ["phone", "fax", "email", "pager", "url", "sms", "other"])
    static let contactPointUse = ValueSet("contact-point-use", ["home", "work", "temp", "old", "mobile"])
    static let nameUse = ValueSet(
        "name-use", ["usual", "official", "temp", "nickname", "anonymous", "old", "maiden"])
    static let addressUse = ValueSet("address-use", ["home", "work", "temp", "old", "billing"])
    static let addressType = ValueSet("address-type", ["postal", "physical", "both"])
    static let narrativeStatus = ValueSet("narrative-status", ["generated", "extensions", "additional", "empty"])
    static let quantityComparator = ValueSet("quantity-comparator", ["<", "<=", ">=", ">"])
    static let unitsOfTime = ValueSet("units-of-time", ["s", "min", "h", "d", "wk", "mo", "a"])
    static let daysOfWeek = ValueSet("days-of-week", ["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    static let eventTiming = ValueSet(
        "event-timing",
        [
            "MORN", "MORN.early", "MORN.late", "NOON", "AFT", "AFT.early", "AFT.late", "EVE", "EVE.early",
            "EVE.late", "NIGHT", "PHS", "HS", "WAKE", "C", "CM", "CD", "CV", "AC", "ACM", "ACD", "ACV", "PC", "PCM",
            "PCD", "PCV",
        ])
    static let contributorType = ValueSet("contributor-type", ["author", "editor", "reviewer", "endorser"])
    static let relatedArtifactType = ValueSet(
        "related-artifact-type",
        [
            "documentation", "justification", "citation", "predecessor", "successor", "derived-from", "depends-on",
            "composed-of",
        ])
    static let operationParameterUse = ValueSet("operation-parameter-use", ["in", "out"])
    static let triggerType = ValueSet(
        "trigger-type",
        [
            "named-event", "periodic", "data-changed", "data-added", "data-modified", "data-removed",
            "data-accessed", "data-access-ended",
        ])
    static let sortDirection = ValueSet("sort-direction", ["ascending", "descending"])
}
