import FHIRJSON

/// The FHIR R4 (4.0.1) resources caresync validates fully, element by element as the spec's
/// `http://hl7.org/fhir/R4/<type>.html` tree view lists them. The DomainResource elements (`id`, `meta`,
/// `implicitRules`, `language`, `text`, `contained`, `extension`, `modifierExtension`) are inherited, and
/// backbone elements inherit `id`, `extension` and `modifierExtension`; see ``StructureDefinition``.
enum R4Resources {
    static func structure(for type: ResourceType) -> StructureDefinition {
        switch type {
        case .carePlan: carePlan
        case .encounter: encounter
        case .relatedPerson: relatedPerson
        case .patient: patient
        }
    }

    static let carePlan = StructureDefinition(
        "CarePlan", .resource,
        [
            .element("identifier", "0..*", .Identifier),
            .element("instantiatesCanonical", "0..*", .canonical),
            .element("instantiatesUri", "0..*", .uri),
            .element("basedOn", "0..*", .Reference),
            .element("replaces", "0..*", .Reference),
            .element("partOf", "0..*", .Reference),
            .element("status", "1..1", .code, bound: .requestStatus),
            .element("intent", "1..1", .code, bound: .carePlanIntent),
            .element("category", "0..*", .CodeableConcept),
            .element("title", "0..1", .string),
            .element("description", "0..1", .string),
            .element("subject", "1..1", .Reference),
            .element("encounter", "0..1", .Reference),
            .element("period", "0..1", .Period),
            .element("created", "0..1", .dateTime),
            .element("author", "0..1", .Reference),
            .element("contributor", "0..*", .Reference),
            .element("careTeam", "0..*", .Reference),
            .element("addresses", "0..*", .Reference),
            .element("supportingInfo", "0..*", .Reference),
            .element("goal", "0..*", .Reference),
            .backbone(
                "activity", "0..*",
                [
                    .element("outcomeCodeableConcept", "0..*", .CodeableConcept),
                    .element("outcomeReference", "0..*", .Reference),
                    .element("progress", "0..*", .Annotation),
                    .element("reference", "0..1", .Reference),
                    .backbone(
                        "detail", "0..1",
                        [
                            .element("kind", "0..1", .code, bound: .carePlanActivityKind),
                            .element("instantiatesCanonical", "0..*", .canonical),
                            .element("instantiatesUri", "0..*", .uri),
                            .element("code", "0..1", .CodeableConcept),
                            .element("reasonCode", "0..*", .CodeableConcept),
                            .element("reasonReference", "0..*", .Reference),
                            .element("goal", "0..*", .Reference),
                            .element("status", "1..1", .code, bound: .carePlanActivityStatus),
                            .element("statusReason", "0..1", .CodeableConcept),
                            .element("doNotPerform", "0..1", .boolean),
                            .choice("scheduled", "0..1", [.Timing, .Period, .string]),
                            .element("location", "0..1", .Reference),
                            .element("performer", "0..*", .Reference),
                            .choice("product", "0..1", [.CodeableConcept, .Reference]),
                            .element("dailyAmount", "0..1", .SimpleQuantity),
                            .element("quantity", "0..1", .SimpleQuantity),
                            .element("description", "0..1", .string),
                        ]
                    ),
                ],
                invariants: [
                    .r4("cpl-3", "an activity has either a reference or a detail, not both") {
                        $0["reference"] == nil || $0["detail"] == nil
                    }
                ]
            ),
            .element("note", "0..*", .Annotation),
        ]
    )

    static let encounter = StructureDefinition(
        "Encounter", .resource,
        [
            .element("identifier", "0..*", .Identifier),
            .element("status", "1..1", .code, bound: .encounterStatus),
            .backbone(
                "statusHistory", "0..*",
                [
                    .element("status", "1..1", .code, bound: .encounterStatus),
                    .element("period", "1..1", .Period),
                ]
            ),
            .element("class", "1..1", .Coding, bound: .encounterClass),
            .backbone(
                "classHistory", "0..*",
                [
                    .element("class", "1..1", .Coding, bound: .encounterClass),
                    .element("period", "1..1", .Period),
                ]
            ),
            .element("type", "0..*", .CodeableConcept),
            .element("serviceType", "0..1", .CodeableConcept),
            .element("priority", "0..1", .CodeableConcept),
            .element("subject", "0..1", .Reference),
            .element("episodeOfCare", "0..*", .Reference),
            .element("basedOn", "0..*", .Reference),
            .backbone(
                "participant", "0..*",
                [
                    .element("type", "0..*", .CodeableConcept),
                    .element("period", "0..1", .Period),
                    .element("individual", "0..1", .Reference),
                ]
            ),
            .element("appointment", "0..*", .Reference),
            .element("period", "0..1", .Period),
            .element("length", "0..1", .Duration),
            .element("reasonCode", "0..*", .CodeableConcept),
            .element("reasonReference", "0..*", .Reference),
            .backbone(
                "diagnosis", "0..*",
                [
                    .element("condition", "1..1", .Reference),
                    .element("use", "0..1", .CodeableConcept),
                    .element("rank", "0..1", .positiveInt),
                ]
            ),
            .element("account", "0..*", .Reference),
            .backbone(
                "hospitalization", "0..1",
                [
                    .element("preAdmissionIdentifier", "0..1", .Identifier),
                    .element("origin", "0..1", .Reference),
                    .element("admitSource", "0..1", .CodeableConcept),
                    .element("reAdmission", "0..1", .CodeableConcept),
                    .element("dietPreference", "0..*", .CodeableConcept),
                    .element("specialCourtesy", "0..*", .CodeableConcept),
                    .element("specialArrangement", "0..*", .CodeableConcept),
                    .element("destination", "0..1", .Reference),
                    .element("dischargeDisposition", "0..1", .CodeableConcept),
                ]
            ),
            .backbone(
                "location", "0..*",
                [
                    .element("location", "1..1", .Reference),
                    .element("status", "0..1", .code, bound: .encounterLocationStatus),
                    .element("physicalType", "0..1", .CodeableConcept),
                    .element("period", "0..1", .Period),
                ]
            ),
            .element("serviceProvider", "0..1", .Reference),
            .element("partOf", "0..1", .Reference),
        ]
    )

    static let relatedPerson = StructureDefinition(
        "RelatedPerson", .resource,
        [
            .element("identifier", "0..*", .Identifier),
            .element("active", "0..1", .boolean),
            .element("patient", "1..1", .Reference),
            .element("relationship", "0..*", .CodeableConcept),
            .element("name", "0..*", .HumanName),
            .element("telecom", "0..*", .ContactPoint),
            .element("gender", "0..1", .code, bound: .administrativeGender),
            .element("birthDate", "0..1", .date),
            .element("address", "0..*", .Address),
            .element("photo", "0..*", .Attachment),
            .element("period", "0..1", .Period),
            .backbone(
                "communication", "0..*",
                [
                    .element("language", "1..1", .CodeableConcept),
                    .element("preferred", "0..1", .boolean),
                ]
            ),
        ]
    )

    static let patient = StructureDefinition(
        "Patient", .resource,
        [
            .element("identifier", "0..*", .Identifier),
            .element("active", "0..1", .boolean),
            .element("name", "0..*", .HumanName),
            .element("telecom", "0..*", .ContactPoint),
            .element("gender", "0..1", .code, bound: .administrativeGender),
            .element("birthDate", "0..1", .date),
            .choice("deceased", "0..1", [.boolean, .dateTime]),
            .element("address", "0..*", .Address),
            .element("maritalStatus", "0..1", .CodeableConcept),
            .choice("multipleBirth", "0..1", [.boolean, .integer]),
            .element("photo", "0..*", .Attachment),
            .backbone(
                "contact", "0..*",
                [
                    .element("relationship", "0..*", .CodeableConcept),
                    .element("name", "0..1", .HumanName),
                    .element("telecom", "0..*", .ContactPoint),
                    .element("address", "0..1", .Address),
                    .element("gender", "0..1", .code, bound: .administrativeGender),
                    .element("organization", "0..1", .Reference),
                    .element("period", "0..1", .Period),
                ],
                invariants: [
                    .r4("pat-1", "a contact has a name, telecom, address or organization") {
                        $0["name"] != nil || $0["telecom"] != nil || $0["address"] != nil || $0["organization"] != nil
                    }
                ]
            ),
            .backbone(
                "communication", "0..*",
                [
                    .element("language", "1..1", .CodeableConcept),
                    .element("preferred", "0..1", .boolean),
                ]
            ),
            .element("generalPractitioner", "0..*", .Reference),
            .element("managingOrganization", "0..1", .Reference),
            .backbone(
                "link", "0..*",
                [
                    .element("other", "1..1", .Reference),
                    .element("type", "1..1", .code, bound: .linkType),
                ]
            ),
        ]
    )
}
