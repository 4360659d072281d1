import FHIRJSON

/// Walks a resource against the R4 element tables and collects every issue: unknown names, cardinality
/// and JSON kinds, primitive forms, required value sets, primitive extensions, duplicate list keys,
/// contained resources and the invariants attached to each structure.
struct StructureWalker {
    let context: ValidationContext
    private(set) var issues: [ValidationIssue] = []

    init(context: ValidationContext) {
        self.context = context
    }

    /// The structure of a primitive's extension object (`_birthDate`): an Element, `id` and `extension`.
    private static let primitiveElement = StructureDefinition("Element", .datatype, [])

    /// Longest value a message quotes.
    private static let quoteLimit = 64

    // MARK: Objects

    /// Checks every member of `object` against `definition`, then its required elements and invariants.
    /// On a resource, `resourceType` and `id` are left to the caller (they carry their own codes).
    mutating func walkObject(_ object: JSONObject, definition: StructureDefinition, path: String) {
        if object.isEmpty {
            report(
                path, .emptyValue,
                "\(path) is an empty object (R4 rule ele-1: an element has a value or children); leave it out instead.")
            return
        }
        var choicesSeen: [(element: String, jsonName: String)] = []
        for member in object.members {
            let key = member.key
            if definition.kind == .resource && (key == "resourceType" || key == "id") { continue }
            if let property = definition.properties[key] {
                if case .choice = property.element.content {
                    if let earlier = choicesSeen.first(where: { $0.element == property.element.name }) {
                        report(
                            "\(path).\(key)", .choiceMultiple,
                            "\(path).\(key) and \(path).\(earlier.jsonName) are two values for the choice element "
                                + "\(property.element.specName), which takes only one.")
                    }
                    choicesSeen.append((property.element.name, key))
                }
                walkProperty(member.value, property: property, key: key, parent: object, path: "\(path).\(key)")
            } else if key.hasPrefix("_"), key.count > 1 {
                walkPrimitiveExtension(member.value, key: key, parent: object, definition: definition, path: path)
            } else {
                report(
                    "\(path).\(key)", .unknownElement,
                    "\(path).\(key) is not an element of \(definition.name) in FHIR R4 (4.0.1).")
            }
        }
        for element in definition.requiredElements {
            let names = definition.jsonNames(of: element)
            if !names.contains(where: { object[$0] != nil }) {
                report(
                    "\(path).\(element.specName)", .requiredMissing,
                    "\(path).\(element.specName) is required (cardinality \(element.cardinality)) but absent.")
            }
        }
        for invariant in definition.invariants {
            invariant.check(object, path, context, &issues)
        }
    }

    /// One member: the list-or-single shape its cardinality demands, then each value.
    private mutating func walkProperty(
        _ value: JSON, property: StructureDefinition.Property, key: String, parent: JSONObject, path: String
    ) {
        let element = property.element
        if element.name == "modifierExtension" {
            report(
                path, .modifierExtension,
                "\(path) is present; caresync refuses modifier extensions because it cannot know how they "
                    + "change the meaning of the record.")
            return
        }
        guard element.cardinality.repeats else {
            if case .array = value {
                report(path, .wrongJSONType, "\(path) holds one value (cardinality \(element.cardinality)), not a JSON array.")
            } else {
                walkValue(value, type: property.type, binding: element.binding, path: path)
            }
            return
        }
        guard case .array(let items) = value else {
            report(
                path, .wrongJSONType,
                "\(path) repeats (cardinality \(element.cardinality)) and must be a JSON array, not a JSON \(value.kindName).")
            return
        }
        if items.isEmpty {
            report(path, .emptyValue, "\(path) is an empty array; FHIR JSON leaves out elements that have no content.")
            return
        }
        let extensions = parent["_" + key]?.arrayValue
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            if case .null = item, extensions?.indices.contains(index) == true,
                case .object = extensions![index]
            {
                continue  // a value-less primitive carried by its extension
            }
            walkValue(item, type: property.type, binding: element.binding, path: itemPath)
        }
        checkListKeys(items, type: property.type, path: path)
    }

    /// A value of a known type.
    private mutating func walkValue(
        _ value: JSON, type: StructureDefinition.PropertyType, binding: ValueSet?, path: String
    ) {
        if case .null = value {
            report(path, .nullValue, "\(path) is null; FHIR JSON leaves out elements that have no value.")
            return
        }
        switch type {
        case .backbone(let definition):
            guard case .object(let object) = value else {
                report(path, .wrongJSONType, "\(path) must be a JSON object (\(definition.name)), not a JSON \(value.kindName).")
                return
            }
            walkObject(object, definition: definition, path: path)
        case .fhir(let fhirType) where fhirType.isPrimitive:
            checkPrimitive(value, type: fhirType, binding: binding, path: path)
        case .fhir(.Resource):
            walkContained(value, path: path)
        case .fhir(let fhirType):
            guard case .object(let object) = value else {
                report(path, .wrongJSONType, "\(path) must be a JSON object (\(fhirType.rawValue)), not a JSON \(value.kindName).")
                return
            }
            walkObject(object, definition: R4Datatypes.structure(for: fhirType)!, path: path)
            if let binding {
                checkCodingBinding(object, type: fhirType, valueSet: binding, path: path)
            }
        }
    }

    // MARK: Primitives

    private mutating func checkPrimitive(_ value: JSON, type: FHIRType, binding: ValueSet?, path: String) {
        if let problem = PrimitiveRules.check(value, as: type) {
            switch problem {
            case .wrongJSONType(let expected):
                report(
                    path, .wrongJSONType,
                    "\(path) must be a JSON \(expected) (FHIR \(type.rawValue)), not a JSON \(value.kindName).")
            case .empty:
                report(path, .emptyValue, "\(path) is an empty string; FHIR JSON leaves out elements that have no value.")
            case .invalid(let rule):
                let quoted = PrimitiveRules.mayQuote(type) ? " \(quote(value.stringValue ?? ""))" : ""
                report(path, .invalidValue, "\(path)\(quoted) is not a valid \(type.rawValue): \(rule).")
            }
            return
        }
        if let binding, let code = value.stringValue, !binding.codes.contains(code) {
            report(
                path, .codeNotInValueSet,
                "\(path) has code \(quote(code)), which is not in the R4 value set \(binding.name) "
                    + "(\(binding.orderedCodes.joined(separator: ", "))).")
        }
    }

    /// A Coding (or each Coding of a CodeableConcept) from the bound system must use one of its codes.
    private mutating func checkCodingBinding(_ object: JSONObject, type: FHIRType, valueSet: ValueSet, path: String) {
        guard let system = valueSet.system else { return }
        func check(_ coding: JSONObject, _ codingPath: String) {
            guard coding["system"]?.stringValue == system, let code = coding["code"]?.stringValue,
                !valueSet.codes.contains(code)
            else { return }
            report(
                "\(codingPath).code", .codeNotInValueSet,
                "\(codingPath).code has code \(quote(code)) from \(system), which is not in the R4 value set "
                    + "\(valueSet.name) (\(valueSet.orderedCodes.joined(separator: ", "))).")
        }
        switch type {
        case .Coding:
            check(object, path)
        case .CodeableConcept:
            for (index, coding) in (object["coding"]?.arrayValue ?? []).enumerated() {
                if let coding = coding.objectValue { check(coding, "\(path).coding[\(index)]") }
            }
        default:
            break
        }
    }

    /// `_name` beside a primitive element `name`: an object (or, for a list, a parallel array of objects
    /// and nulls) holding only `id` and `extension`.
    private mutating func walkPrimitiveExtension(
        _ value: JSON, key: String, parent: JSONObject, definition: StructureDefinition, path: String
    ) {
        let baseName = String(key.dropFirst())
        guard let property = definition.properties[baseName], case .fhir(let type) = property.type, type.isPrimitive
        else {
            report(
                "\(path).\(key)", .primitiveExtensionInvalid,
                "\(path).\(key) is a primitive extension, but \(definition.name) has no primitive element \(baseName).")
            return
        }
        let basePath = "\(path).\(baseName)"
        guard property.element.cardinality.repeats else {
            guard case .object(let object) = value else {
                report(
                    "\(path).\(key)", .primitiveExtensionInvalid,
                    "\(path).\(key) must be a JSON object with id and extension, not a JSON \(value.kindName).")
                return
            }
            walkObject(object, definition: Self.primitiveElement, path: basePath)
            return
        }
        guard case .array(let items) = value else {
            report(
                "\(path).\(key)", .primitiveExtensionInvalid,
                "\(path).\(key) must be a JSON array parallel to \(basePath), not a JSON \(value.kindName).")
            return
        }
        let values = parent[baseName]?.arrayValue
        if let values, values.count != items.count {
            report(
                "\(path).\(key)", .primitiveExtensionInvalid,
                "\(path).\(key) has \(items.count) items but \(basePath) has \(values.count); the two arrays run in parallel.")
            return
        }
        for (index, item) in items.enumerated() {
            switch item {
            case .null:
                let valueIsNull = values.map { index < $0.count && $0[index] == .null } ?? true
                if valueIsNull {
                    report(
                        "\(basePath)[\(index)]", .nullValue,
                        "\(basePath)[\(index)] has neither a value nor an extension (both are null).")
                }
            case .object(let object):
                walkObject(object, definition: Self.primitiveElement, path: "\(basePath)[\(index)]")
            default:
                report(
                    "\(path).\(key)[\(index)]", .primitiveExtensionInvalid,
                    "\(path).\(key)[\(index)] must be a JSON object or null, not a JSON \(item.kindName).")
            }
        }
    }

    // MARK: Lists and contained resources

    /// Two items of one list may not share an element `id` (R4: element ids are unique within a resource),
    /// nor, in the caresync profile, `system|value` for identifiers (caresync's merge keys; R4 allows repeats).
    private mutating func checkListKeys(_ items: [JSON], type: StructureDefinition.PropertyType, path: String) {
        guard items.count > 1 else { return }
        var ids: [String: Int] = [:]
        var identifiers: [String: Int] = [:]
        let isIdentifier: Bool = if case .fhir(.Identifier) = type { context.profile == .caresync } else { false }
        for (index, item) in items.enumerated() {
            guard case .object(let object) = item else { continue }
            if let id = object["id"]?.stringValue {
                if let first = ids[id] {
                    report(
                        "\(path)[\(index)].id", .duplicateElementID,
                        "\(path)[\(index)].id is \(quote(id)), which \(path)[\(first)] already uses; items of one "
                            + "list are told apart by their id.")
                } else {
                    ids[id] = index
                }
            }
            if isIdentifier, let system = object["system"]?.stringValue, let value = object["value"]?.stringValue {
                let token = system + "|" + value
                if let first = identifiers[token] {
                    report(
                        "\(path)[\(index)]", .duplicateIdentifier,
                        "\(path)[\(index)] repeats the system and value of \(path)[\(first)]; an identifier is listed once.")
                } else {
                    identifiers[token] = index
                }
            }
        }
    }

    /// A contained resource: an object with `resourceType` and an `id`. CarePlan, Encounter, RelatedPerson
    /// and Patient are validated fully (plus R4 dom-2, dom-4, dom-5); other types only for that shape.
    private mutating func walkContained(_ value: JSON, path: String) {
        guard case .object(let object) = value else {
            report(path, .containedInvalid, "\(path) must be a resource (a JSON object), not a JSON \(value.kindName).")
            return
        }
        guard let typeName = object["resourceType"]?.stringValue else {
            report(path, .containedInvalid, "\(path) has no resourceType; a contained resource names its type.")
            return
        }
        if let id = object["id"] {
            if !(id.stringValue.map(PrimitiveRules.isID) ?? false) {
                report(
                    "\(path).id", .idInvalid,
                    "\(path).id is not a FHIR id (1 to 64 characters from A-Z, a-z, 0-9, '-' and '.').")
            }
        } else {
            report(path, .containedInvalid, "\(path) has no id; a contained resource is referenced by its id.")
        }
        guard let type = ResourceType(rawValue: typeName) else { return }
        walkObject(object, definition: R4Resources.structure(for: type), path: path)
        if object["contained"] != nil {
            report(
                "\(path).contained", .invariantFailed,
                "\(path).contained is present (R4 rule dom-2: a contained resource contains no resources).")
        }
        if let meta = object["meta"], meta["versionId"] != nil || meta["lastUpdated"] != nil {
            report(
                "\(path).meta", .invariantFailed,
                "\(path).meta has a versionId or lastUpdated (R4 rule dom-4: a contained resource has neither).")
        }
        if object["meta"]?["security"] != nil {
            report(
                "\(path).meta.security", .invariantFailed,
                "\(path).meta.security is present (R4 rule dom-5: a contained resource has no security labels).")
        }
    }

    // MARK: Reporting

    private mutating func report(_ path: String, _ code: ValidationCode, _ message: String) {
        issues.append(ValidationIssue(path: path, code: code, message: message))
    }

    private func quote(_ text: String) -> String {
        let shown = text.count > Self.quoteLimit ? text.prefix(Self.quoteLimit) + "…" : Substring(text)
        return "\"\(shown)\""
    }
}
