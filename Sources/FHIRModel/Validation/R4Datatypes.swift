import FHIRJSON

/// The FHIR R4 (4.0.1) datatypes that CarePlan, Encounter, RelatedPerson and Patient use, and every type
/// an Extension's `value[x]` may hold. Each table follows the datatype's page in the R4 spec
/// (`http://hl7.org/fhir/R4/datatypes.html`, `metadatatypes.html`, `dosage.html`, `extensibility.html`,
/// `narrative.html`, `resource.html#Meta`): element name, cardinality, type, required binding.
/// `id` and `extension` (and `modifierExtension` for Timing and Dosage) are inherited, see ``StructureDefinition``.
enum R4Datatypes {
    static func structure(for type: FHIRType) -> StructureDefinition? {
        all[type]
    }

    static let all: [FHIRType: StructureDefinition] = {
        var table: [FHIRType: StructureDefinition] = [:]
        for definition in definitions {
            let type = FHIRType(rawValue: definition.name)!
            precondition(table[type] == nil, "two tables for \(definition.name)")
            table[type] = definition
        }
        return table
    }()

    private static let quantityElements: [ElementDefinition] = [
        .element("value", "0..1", .decimal),
        .element("comparator", "0..1", .code, bound: .quantityComparator),
        .element("unit", "0..1", .string),
        .element("system", "0..1", .uri),
        .element("code", "0..1", .code),
    ]

    private static let definitions: [StructureDefinition] = [
        // MARK: General-purpose datatypes
        StructureDefinition(
            "Identifier", .datatype,
            [
                .element("use", "0..1", .code, bound: .identifierUse),
                .element("type", "0..1", .CodeableConcept),
                .element("system", "0..1", .uri),
                .element("value", "0..1", .string),
                .element("period", "0..1", .Period),
                .element("assigner", "0..1", .Reference),
            ],
            invariants: [NHSNumberRules.identifierInvariant]
        ),
        StructureDefinition(
            "Reference", .datatype,
            [
                .element("reference", "0..1", .string),
                .element("type", "0..1", .uri),
                .element("identifier", "0..1", .Identifier),
                .element("display", "0..1", .string),
            ],
            invariants: [localReferenceResolves]
        ),
        StructureDefinition(
            "CodeableConcept", .datatype,
            [
                .element("coding", "0..*", .Coding),
                .element("text", "0..1", .string),
            ]
        ),
        StructureDefinition(
            "Coding", .datatype,
            [
                .element("system", "0..1", .uri),
                .element("version", "0..1", .string),
                .element("code", "0..1", .code),
                .element("display", "0..1", .string),
                .element("userSelected", "0..1", .boolean),
            ]
        ),
        StructureDefinition(
            "Period", .datatype,
            [
                .element("start", "0..1", .dateTime),
                .element("end", "0..1", .dateTime),
            ],
            invariants: [periodEndNotBeforeStart]
        ),
        StructureDefinition(
            "Timing", .backboneDatatype,
            [
                .element("event", "0..*", .dateTime),
                .backbone(
                    "repeat", "0..1",
                    [
                        .choice("bounds", "0..1", [.Duration, .Range, .Period]),
                        .element("count", "0..1", .positiveInt),
                        .element("countMax", "0..1", .positiveInt),
                        .element("duration", "0..1", .decimal),
                        .element("durationMax", "0..1", .decimal),
                        .element("durationUnit", "0..1", .code, bound: .unitsOfTime),
                        .element("frequency", "0..1", .positiveInt),
                        .element("frequencyMax", "0..1", .positiveInt),
                        .element("period", "0..1", .decimal),
                        .element("periodMax", "0..1", .decimal),
                        .element("periodUnit", "0..1", .code, bound: .unitsOfTime),
                        .element("dayOfWeek", "0..*", .code, bound: .daysOfWeek),
                        .element("timeOfDay", "0..*", .time),
                        .element("when", "0..*", .code, bound: .eventTiming),
                        .element("offset", "0..1", .unsignedInt),
                    ],
                    invariants: timingRepeatInvariants
                ),
                .element("code", "0..1", .CodeableConcept),
            ]
        ),
        StructureDefinition("Quantity", .datatype, quantityElements, invariants: [quantityCodeHasSystem]),
        StructureDefinition(
            "SimpleQuantity", .datatype, quantityElements,
            invariants: [
                quantityCodeHasSystem,
                .r4("sqty-1", "a SimpleQuantity has no comparator") { $0["comparator"] == nil },
            ]
        ),
        StructureDefinition("Age", .datatype, quantityElements, invariants: [quantityCodeHasSystem]),
        StructureDefinition("Count", .datatype, quantityElements, invariants: [quantityCodeHasSystem]),
        StructureDefinition("Distance", .datatype, quantityElements, invariants: [quantityCodeHasSystem]),
        StructureDefinition("Duration", .datatype, quantityElements, invariants: [quantityCodeHasSystem]),
        StructureDefinition(
            "Money", .datatype,
            [
                .element("value", "0..1", .decimal),
                .element("currency", "0..1", .code),
            ]
        ),
        StructureDefinition(
            "Range", .datatype,
            [
                .element("low", "0..1", .SimpleQuantity),
                .element("high", "0..1", .SimpleQuantity),
            ],
            invariants: [rangeLowNotAboveHigh]
        ),
        StructureDefinition(
            "Ratio", .datatype,
            [
                .element("numerator", "0..1", .Quantity),
                .element("denominator", "0..1", .Quantity),
            ],
            invariants: [
                .r4("rat-1", "numerator and denominator are both present, or both absent with an extension present") {
                    ($0["numerator"] != nil) == ($0["denominator"] != nil)
                        && ($0["numerator"] != nil || $0["extension"] != nil)
                }
            ]
        ),
        StructureDefinition(
            "SampledData", .datatype,
            [
                .element("origin", "1..1", .SimpleQuantity),
                .element("period", "1..1", .decimal),
                .element("factor", "0..1", .decimal),
                .element("lowerLimit", "0..1", .decimal),
                .element("upperLimit", "0..1", .decimal),
                .element("dimensions", "1..1", .positiveInt),
                .element("data", "0..1", .string),
            ]
        ),
        StructureDefinition(
            "Attachment", .datatype,
            [
                .element("contentType", "0..1", .code),
                .element("language", "0..1", .code),
                .element("data", "0..1", .base64Binary),
                .element("url", "0..1", .url),
                .element("size", "0..1", .unsignedInt),
                .element("hash", "0..1", .base64Binary),
                .element("title", "0..1", .string),
                .element("creation", "0..1", .dateTime),
            ],
            invariants: [
                .r4("att-1", "an attachment with data has a contentType") {
                    $0["data"] == nil || $0["contentType"] != nil
                }
            ]
        ),
        StructureDefinition(
            "Annotation", .datatype,
            [
                .choice("author", "0..1", [.Reference, .string]),
                .element("time", "0..1", .dateTime),
                .element("text", "1..1", .markdown),
            ]
        ),
        StructureDefinition(
            "HumanName", .datatype,
            [
                .element("use", "0..1", .code, bound: .nameUse),
                .element("text", "0..1", .string),
                .element("family", "0..1", .string),
                .element("given", "0..*", .string),
                .element("prefix", "0..*", .string),
                .element("suffix", "0..*", .string),
                .element("period", "0..1", .Period),
            ]
        ),
        StructureDefinition(
            "ContactPoint", .datatype,
            [
                .element("system", "0..1", .code, bound: .contactPointSystem),
                .element("value", "0..1", .string),
                .element("use", "0..1", .code, bound: .contactPointUse),
                .element("rank", "0..1", .positiveInt),
                .element("period", "0..1", .Period),
            ],
            invariants: [
                .r4("cpt-2", "a contact point with a value has a system") { $0["value"] == nil || $0["system"] != nil }
            ]
        ),
        StructureDefinition(
            "Address", .datatype,
            [
                .element("use", "0..1", .code, bound: .addressUse),
                .element("type", "0..1", .code, bound: .addressType),
                .element("text", "0..1", .string),
                .element("line", "0..*", .string),
                .element("city", "0..1", .string),
                .element("district", "0..1", .string),
                .element("state", "0..1", .string),
                .element("postalCode", "0..1", .string),
                .element("country", "0..1", .string),
                .element("period", "0..1", .Period),
            ]
        ),
        StructureDefinition(
            "Signature", .datatype,
            [
                .element("type", "1..*", .Coding),
                .element("when", "1..1", .instant),
                .element("who", "1..1", .Reference),
                .element("onBehalfOf", "0..1", .Reference),
                .element("targetFormat", "0..1", .code),
                .element("sigFormat", "0..1", .code),
                .element("data", "0..1", .base64Binary),
            ]
        ),

        // MARK: Metadata datatypes (reachable only through Extension.value[x])
        StructureDefinition(
            "ContactDetail", .datatype,
            [
                .element("name", "0..1", .string),
                .element("telecom", "0..*", .ContactPoint),
            ]
        ),
        StructureDefinition(
            "Contributor", .datatype,
            [
                .element("type", "1..1", .code, bound: .contributorType),
                .element("name", "1..1", .string),
                .element("contact", "0..*", .ContactDetail),
            ]
        ),
        StructureDefinition(
            "DataRequirement", .datatype,
            [
                .element("type", "1..1", .code),
                .element("profile", "0..*", .canonical),
                .choice("subject", "0..1", [.CodeableConcept, .Reference]),
                .element("mustSupport", "0..*", .string),
                .backbone(
                    "codeFilter", "0..*",
                    [
                        .element("path", "0..1", .string),
                        .element("searchParam", "0..1", .string),
                        .element("valueSet", "0..1", .canonical),
                        .element("code", "0..*", .Coding),
                    ],
                    invariants: [
                        .r4("drq-1", "a code filter has either a path or a searchParam, not both") {
                            ($0["path"] != nil) != ($0["searchParam"] != nil)
                        }
                    ]
                ),
                .backbone(
                    "dateFilter", "0..*",
                    [
                        .element("path", "0..1", .string),
                        .element("searchParam", "0..1", .string),
                        .choice("value", "0..1", [.dateTime, .Period, .Duration]),
                    ],
                    invariants: [
                        .r4("drq-2", "a date filter has either a path or a searchParam, not both") {
                            ($0["path"] != nil) != ($0["searchParam"] != nil)
                        }
                    ]
                ),
                .element("limit", "0..1", .positiveInt),
                .backbone(
                    "sort", "0..*",
                    [
                        .element("path", "1..1", .string),
                        .element("direction", "1..1", .code, bound: .sortDirection),
                    ]
                ),
            ]
        ),
        StructureDefinition(
            "Expression", .datatype,
            [
                .element("description", "0..1", .string),
                .element("name", "0..1", .id),
                .element("language", "1..1", .code),
                .element("expression", "0..1", .string),
                .element("reference", "0..1", .uri),
            ],
            invariants: [
                .r4("exp-1", "an expression has an expression or a reference") {
                    $0["expression"] != nil || $0["reference"] != nil
                }
            ]
        ),
        StructureDefinition(
            "ParameterDefinition", .datatype,
            [
                .element("name", "0..1", .code),
                .element("use", "1..1", .code, bound: .operationParameterUse),
                .element("min", "0..1", .integer),
                .element("max", "0..1", .string),
                .element("documentation", "0..1", .string),
                .element("type", "1..1", .code),
                .element("profile", "0..1", .canonical),
            ]
        ),
        StructureDefinition(
            "RelatedArtifact", .datatype,
            [
                .element("type", "1..1", .code, bound: .relatedArtifactType),
                .element("label", "0..1", .string),
                .element("display", "0..1", .string),
                .element("citation", "0..1", .markdown),
                .element("url", "0..1", .url),
                .element("document", "0..1", .Attachment),
                .element("resource", "0..1", .canonical),
            ]
        ),
        StructureDefinition(
            "TriggerDefinition", .datatype,
            [
                .element("type", "1..1", .code, bound: .triggerType),
                .element("name", "0..1", .string),
                .choice("timing", "0..1", [.Timing, .Reference, .date, .dateTime]),
                .element("data", "0..*", .DataRequirement),
                .element("condition", "0..1", .Expression),
            ],
            invariants: [
                .r4("trd-1", "a trigger has either data or a timing, not both") {
                    $0["data"] == nil || !$0.keys.contains { $0.hasPrefix("timing") }
                },
                .r4("trd-2", "a trigger with a condition has data") { $0["condition"] == nil || $0["data"] != nil },
            ]
        ),
        StructureDefinition(
            "UsageContext", .datatype,
            [
                .element("code", "1..1", .Coding),
                .choice("value", "1..1", [.CodeableConcept, .Quantity, .Range, .Reference]),
            ]
        ),

        // MARK: Special-purpose datatypes
        StructureDefinition(
            "Dosage", .backboneDatatype,
            [
                .element("sequence", "0..1", .integer),
                .element("text", "0..1", .string),
                .element("additionalInstruction", "0..*", .CodeableConcept),
                .element("patientInstruction", "0..1", .string),
                .element("timing", "0..1", .Timing),
                .choice("asNeeded", "0..1", [.boolean, .CodeableConcept]),
                .element("site", "0..1", .CodeableConcept),
                .element("route", "0..1", .CodeableConcept),
                .element("method", "0..1", .CodeableConcept),
                .backbone(
                    "doseAndRate", "0..*",
                    [
                        .element("type", "0..1", .CodeableConcept),
                        .choice("dose", "0..1", [.Range, .SimpleQuantity]),
                        .choice("rate", "0..1", [.Ratio, .Range, .SimpleQuantity]),
                    ]
                ),
                .element("maxDosePerPeriod", "0..1", .Ratio),
                .element("maxDosePerAdministration", "0..1", .SimpleQuantity),
                .element("maxDosePerLifetime", "0..1", .SimpleQuantity),
            ]
        ),
        StructureDefinition(
            "Meta", .datatype,
            [
                .element("versionId", "0..1", .id),
                .element("lastUpdated", "0..1", .instant),
                .element("source", "0..1", .uri),
                .element("profile", "0..*", .canonical),
                .element("security", "0..*", .Coding),
                .element("tag", "0..*", .Coding),
            ]
        ),
        StructureDefinition(
            "Narrative", .datatype,
            [
                .element("status", "1..1", .code, bound: .narrativeStatus),
                .element("div", "1..1", .xhtml),
            ]
        ),
        StructureDefinition(
            "Extension", .datatype,
            [
                .element("url", "1..1", .uri),
                .choice(
                    "value", "0..1",
                    [
                        .base64Binary, .boolean, .canonical, .code, .date, .dateTime, .decimal, .id, .instant, .integer,
                        .markdown, .oid, .positiveInt, .string, .time, .unsignedInt, .uri, .url, .uuid,
                        .Address, .Age, .Annotation, .Attachment, .CodeableConcept, .Coding, .ContactPoint, .Count,
                        .Distance, .Duration, .HumanName, .Identifier, .Money, .Period, .Quantity, .Range, .Ratio,
                        .Reference, .SampledData, .Signature, .Timing,
                        .ContactDetail, .Contributor, .DataRequirement, .Expression, .ParameterDefinition,
                        .RelatedArtifact, .TriggerDefinition, .UsageContext,
                        .Dosage, .Meta,
                    ]
                ),
            ],
            invariants: [
                .r4("ext-1", "an extension has either a value[x] or nested extensions, not both") { object in
                    let hasValue = object.keys.contains { $0.hasPrefix("value") }
                    return hasValue != (object["extension"] != nil)
                }
            ]
        ),
    ]

    // MARK: Invariants

    /// per-1: a Period's end is not before its start. Values of different precision are compared as the
    /// spans they cover (`2025-03` covers all of March): only an end that is wholly before the start fails.
    private static let periodEndNotBeforeStart = Invariant("per-1") { object, path, _, issues in
        guard let start = object["start"]?.stringValue.flatMap(PartialDateTime.init),
            let end = object["end"]?.stringValue.flatMap(PartialDateTime.init)
        else { return }
        if end.isWhollyBefore(start) {
            let path = path.description
            issues.append(
                ValidationIssue(
                    path: path, code: .periodEndBeforeStart,
                    message: "\(path).end is before \(path).start (R4 rule per-1: a period cannot end before it starts)."
                ))
        }
    }

    /// ref-1: a local reference `#id` names a resource contained in the root resource (`#` alone names
    /// the container itself).
    private static let localReferenceResolves = Invariant("ref-1") { object, path, context, issues in
        guard let reference = object["reference"]?.stringValue, reference.hasPrefix("#"), reference.count > 1 else {
            return
        }
        if !context.containedIDs.contains(String(reference.dropFirst())) {
            let path = path.description
            issues.append(
                ValidationIssue(
                    path: "\(path).reference", code: .invariantFailed,
                    message: "\(path).reference is the local reference \"\(reference)\", but no contained resource "
                        + "has that id (R4 rule ref-1)."
                ))
        }
    }

    /// qty-3: a Quantity with a unit code names the code system.
    private static let quantityCodeHasSystem = Invariant.r4("qty-3", "a quantity with a code has a system") {
        $0["code"] == nil || $0["system"] != nil
    }

    /// rng-2: a Range's low is not above its high (compared when both have values in the same unit).
    private static let rangeLowNotAboveHigh = Invariant.r4("rng-2", "the low value of a range is not above the high value") {
        object in
        guard let low = object["low"], let high = object["high"],
            let lowValue = low["value"]?.numberValue?.doubleValue, let highValue = high["value"]?.numberValue?.doubleValue,
            low["code"] == high["code"], low["unit"] == high["unit"]
        else { return true }
        return lowValue <= highValue
    }

    private static let timingRepeatInvariants: [Invariant] = [
        .r4("tim-1", "a repeat with a duration has a durationUnit") { $0["duration"] == nil || $0["durationUnit"] != nil },
        .r4("tim-2", "a repeat with a period has a periodUnit") { $0["period"] == nil || $0["periodUnit"] != nil },
        .r4("tim-4", "a repeat's duration is not negative") { isNotNegative($0["duration"]) },
        .r4("tim-5", "a repeat's period is not negative") { isNotNegative($0["period"]) },
        .r4("tim-6", "a repeat with periodMax has a period") { $0["periodMax"] == nil || $0["period"] != nil },
        .r4("tim-7", "a repeat with durationMax has a duration") { $0["durationMax"] == nil || $0["duration"] != nil },
        .r4("tim-8", "a repeat with countMax has a count") { $0["countMax"] == nil || $0["count"] != nil },
        .r4("tim-9", "a repeat with an offset has a when that is not C, CM, CD or CV") { object in
            guard object["offset"] != nil else { return true }
            guard let when = object["when"]?.arrayValue, !when.isEmpty else { return false }
            return !when.contains { ["C", "CM", "CD", "CV"].contains($0.stringValue ?? "") }
        },
        .r4("tim-10", "a repeat has either timeOfDay or when, not both") {
            $0["timeOfDay"] == nil || $0["when"] == nil
        },
    ]

    private static func isNotNegative(_ value: JSON?) -> Bool {
        guard let number = value?.numberValue?.doubleValue else { return true }
        return number >= 0
    }
}
