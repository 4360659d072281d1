import FHIRJSON

/// Walks a resource against the R4 element tables and collects every issue: unknown names, cardinality
/// and JSON kinds, primitive forms, required value sets, primitive extensions, duplicate list keys,
/// contained resources and the invariants attached to each structure.
///
/// The current location is a stack of path components, written out only when an issue is reported, so a
/// valid resource costs no string building.
struct StructureWalker {
    let context: ValidationContext
    private(set) var issues: [ValidationIssue] = []
    private var path: ValidationPath

    /// A walker whose paths start at `root` (the resource type name).
    init(context: ValidationContext, root: String) {
        self.context = context
        self.path = ValidationPath(root: root)
    }

    /// The structure of a primitive's extension object (`_birthDate`): an Element, `id` and `extension`.
    private static let primitiveElement = StructureDefinition("Element", .datatype, [])

    /// Longest value a message quotes.
    private static let quoteLimit = 64

    // MARK: Objects

    /// Checks every member of `object` (at the current path) against `definition`, then its required
    /// elements and invariants. On a resource, `resourceType` and `id` are left to the caller (they carry
    /// their own codes).
    mutating func walkObject(_ object: JSONObject, definition: StructureDefinition) {
        if object.isEmpty {
            report(.emptyValue) {
                "\($0) is an empty object (R4 rule ele-1: an element has a value or children); leave it out instead."
            }
            return
        }
        for member in object.members {
            let key = member.key
            if definition.kind == .resource && (key == "resourceType" || key == "id") { continue }
            if let property = definition.properties[key] {
                if case .choice(let types) = property.element.content,
                    let earlier = earlierVariant(of: property.element.name, types: types, before: key, in: object)
                {
                    let earlierPath = path.appending(earlier)
                    report(.choiceMultiple, at: key) {
                        "\($0) and \(earlierPath) are two values for the choice element "
                            + "\(property.element.specName), which takes only one."
                    }
                }
                path.push(key)
                walkProperty(member.value, property: property, key: key, parent: object)
                path.pop()
            } else if key.hasPrefix("_"), key.count > 1 {
                walkPrimitiveExtension(member.value, key: key, parent: object, definition: definition)
            } else {
                report(.unknownElement, at: key) { "\($0) is not an element of \(definition.name) in FHIR R4 (4.0.1)." }
            }
        }
        for element in definition.requiredElements where !isPresent(element, in: object) {
            report(.requiredMissing, at: element.specName) {
                "\($0) is required (cardinality \(element.cardinality)) but absent."
            }
        }
        for invariant in definition.invariants {
            invariant.check(object, path, context, &issues)
        }
    }

    /// The JSON name of another variant of choice element `name` that comes before `key` in `object`.
    private func earlierVariant(of name: String, types: [FHIRType], before key: String, in object: JSONObject) -> String? {
        for member in object.members {
            if member.key == key { return nil }
            if member.key.hasPrefix(name), types.contains(where: { name + $0.choiceSuffix == member.key }) {
                return member.key
            }
        }
        return nil
    }

    private func isPresent(_ element: ElementDefinition, in object: JSONObject) -> Bool {
        switch element.content {
        case .type, .backbone:
            return object[element.name] != nil
        case .choice(let types):
            return types.contains { object[element.name + $0.choiceSuffix] != nil }
        }
    }

    /// One member (the path already ends in its name): the list-or-single shape its cardinality demands,
    /// then each value.
    private mutating func walkProperty(
        _ value: JSON, property: StructureDefinition.Property, key: String, parent: JSONObject
    ) {
        let element = property.element
        if element.name == "modifierExtension" {
            report(.modifierExtension) {
                "\($0) is present; caresync refuses modifier extensions because it cannot know how they "
                    + "change the meaning of the record."
            }
            return
        }
        guard element.cardinality.repeats else {
            if case .array = value {
                report(.wrongJSONType) { "\($0) holds one value (cardinality \(element.cardinality)), not a JSON array." }
            } else {
                walkValue(value, type: property.type, binding: element.binding)
            }
            return
        }
        guard case .array(let items) = value else {
            report(.wrongJSONType) {
                "\($0) repeats (cardinality \(element.cardinality)) and must be a JSON array, not a JSON \(value.kindName)."
            }
            return
        }
        if items.isEmpty {
            report(.emptyValue) { "\($0) is an empty array; FHIR JSON leaves out elements that have no content." }
            return
        }
        let extensions = items.contains(.null) ? parent["_" + key]?.arrayValue : nil
        for (index, item) in items.enumerated() {
            if case .null = item, let extensions, extensions.indices.contains(index), case .object = extensions[index] {
                continue  // a value-less primitive carried by its extension
            }
            path.push(index: index)
            walkValue(item, type: property.type, binding: element.binding)
            path.pop()
        }
        if items.count > 1 { checkListKeys(items, type: property.type) }
    }

    /// A value of a known type at the current path.
    private mutating func walkValue(_ value: JSON, type: StructureDefinition.PropertyType, binding: ValueSet?) {
        if case .null = value {
            report(.nullValue) { "\($0) is null; FHIR JSON leaves out elements that have no value." }
            return
        }
        switch type {
        case .backbone(let definition):
            guard case .object(let object) = value else {
                report(.wrongJSONType) { "\($0) must be a JSON object (\(definition.name)), not a JSON \(value.kindName)." }
                return
            }
            walkObject(object, definition: definition)
        case .fhir(let fhirType) where fhirType.isPrimitive:
            checkPrimitive(value, type: fhirType, binding: binding)
        case .fhir(.Resource):
            walkContained(value)
        case .fhir(let fhirType):
            guard case .object(let object) = value else {
                report(.wrongJSONType) { "\($0) must be a JSON object (\(fhirType.rawValue)), not a JSON \(value.kindName)." }
                return
            }
            walkObject(object, definition: R4Datatypes.structure(for: fhirType)!)
            if let binding {
                checkCodingBinding(object, type: fhirType, valueSet: binding)
            }
        }
    }

    // MARK: Primitives

    private mutating func checkPrimitive(_ value: JSON, type: FHIRType, binding: ValueSet?) {
        if let problem = PrimitiveRules.check(value, as: type) {
            switch problem {
            case .wrongJSONType(let expected):
                report(.wrongJSONType) {
                    "\($0) must be a JSON \(expected) (FHIR \(type.rawValue)), not a JSON \(value.kindName)."
                }
            case .empty:
                report(.emptyValue) { "\($0) is an empty string; FHIR JSON leaves out elements that have no value." }
            case .invalid(let rule):
                let quoted = PrimitiveRules.mayQuote(type) ? " \(Self.quote(value.stringValue ?? ""))" : ""
                report(.invalidValue) { "\($0)\(quoted) is not a valid \(type.rawValue): \(rule)." }
            }
            return
        }
        if let binding, let code = value.stringValue, !binding.codes.contains(code) {
            report(.codeNotInValueSet) {
                "\($0) has code \(Self.quote(code)), which is not in the R4 value set \(binding.name) "
                    + "(\(binding.orderedCodes.joined(separator: ", ")))."
            }
        }
    }

    /// A Coding (or each Coding of a CodeableConcept) from the bound system must use one of its codes.
    private mutating func checkCodingBinding(_ object: JSONObject, type: FHIRType, valueSet: ValueSet) {
        guard let system = valueSet.system else { return }
        func check(_ coding: JSONObject, _ walker: inout StructureWalker) {
            guard coding["system"]?.stringValue == system, let code = coding["code"]?.stringValue,
                !valueSet.codes.contains(code)
            else { return }
            walker.report(.codeNotInValueSet, at: "code") {
                "\($0) has code \(Self.quote(code)) from \(system), which is not in the R4 value set "
                    + "\(valueSet.name) (\(valueSet.orderedCodes.joined(separator: ", ")))."
            }
        }
        switch type {
        case .Coding:
            check(object, &self)
        case .CodeableConcept:
            for (index, coding) in (object["coding"]?.arrayValue ?? []).enumerated() {
                guard let coding = coding.objectValue else { continue }
                path.push("coding")
                path.push(index: index)
                check(coding, &self)
                path.pop()
                path.pop()
            }
        default:
            break
        }
    }

    /// `_name` beside a primitive element `name`: an object (or, for a list, a parallel array of objects
    /// and nulls) holding only `id` and `extension`. Its contents are reported under `name`.
    private mutating func walkPrimitiveExtension(
        _ value: JSON, key: String, parent: JSONObject, definition: StructureDefinition
    ) {
        let baseName = String(key.dropFirst())
        guard let property = definition.properties[baseName], case .fhir(let type) = property.type, type.isPrimitive
        else {
            report(.primitiveExtensionInvalid, at: key) {
                "\($0) is a primitive extension, but \(definition.name) has no primitive element \(baseName)."
            }
            return
        }
        guard property.element.cardinality.repeats else {
            guard case .object(let object) = value else {
                report(.primitiveExtensionInvalid, at: key) {
                    "\($0) must be a JSON object with id and extension, not a JSON \(value.kindName)."
                }
                return
            }
            path.push(baseName)
            walkObject(object, definition: Self.primitiveElement)
            path.pop()
            return
        }
        guard case .array(let items) = value else {
            let basePath = path.appending(baseName)
            report(.primitiveExtensionInvalid, at: key) {
                "\($0) must be a JSON array parallel to \(basePath), not a JSON \(value.kindName)."
            }
            return
        }
        let values = parent[baseName]?.arrayValue
        if let values, values.count != items.count {
            let basePath = path.appending(baseName)
            report(.primitiveExtensionInvalid, at: key) {
                "\($0) has \(items.count) items but \(basePath) has \(values.count); the two arrays "
                    + "run in parallel."
            }
            return
        }
        path.push(baseName)
        defer { path.pop() }
        for (index, item) in items.enumerated() {
            path.push(index: index)
            defer { path.pop() }
            switch item {
            case .null:
                let valueIsNull = values.map { index < $0.count && $0[index] == .null } ?? true
                if valueIsNull {
                    report(.nullValue) { "\($0) has neither a value nor an extension (both are null)." }
                }
            case .object(let object):
                walkObject(object, definition: Self.primitiveElement)
            default:
                report(.primitiveExtensionInvalid) {
                    "\($0) (in \(key)) must be a JSON object or null, not a JSON \(item.kindName)."
                }
            }
        }
    }

    // MARK: Lists and contained resources

    /// Two items of one list may not share an element `id` (R4: element ids are unique within a resource),
    /// nor, in the caresync profile, `system|value` for identifiers (caresync's merge keys; R4 allows repeats).
    private mutating func checkListKeys(_ items: [JSON], type: StructureDefinition.PropertyType) {
        let isIdentifier: Bool = if case .fhir(.Identifier) = type { context.profile == .caresync } else { false }
        for index in items.indices.dropFirst() {
            guard case .object(let object) = items[index] else { continue }
            if let id = object["id"]?.stringValue,
                let first = items[..<index].firstIndex(where: { $0["id"]?.stringValue == id })
            {
                let firstPath = itemPath(first)
                path.push(index: index)
                report(.duplicateElementID, at: "id") {
                    "\($0) is \(Self.quote(id)), which \(firstPath) already uses; items of one list are told apart by "
                        + "their id."
                }
                path.pop()
            }
            if isIdentifier, let system = object["system"]?.stringValue, let value = object["value"]?.stringValue,
                let first = items[..<index].firstIndex(where: { $0["system"]?.stringValue == system && $0["value"]?.stringValue == value })
            {
                let firstPath = itemPath(first)
                path.push(index: index)
                report(.duplicateIdentifier) {
                    "\($0) repeats the system and value of \(firstPath); an identifier is listed once."
                }
                path.pop()
            }
        }
    }

    /// The current list's item `index`, written out (the path ends in the list's name).
    private func itemPath(_ index: Int) -> String { "\(path)[\(index)]" }

    /// A contained resource at the current path: an object with `resourceType` and an `id`. CarePlan,
    /// Encounter, RelatedPerson and Patient are validated fully (plus R4 dom-2, dom-4, dom-5); other types
    /// only for that shape.
    private mutating func walkContained(_ value: JSON) {
        guard case .object(let object) = value else {
            report(.containedInvalid) { "\($0) must be a resource (a JSON object), not a JSON \(value.kindName)." }
            return
        }
        guard let typeName = object["resourceType"]?.stringValue else {
            report(.containedInvalid) { "\($0) has no resourceType; a contained resource names its type." }
            return
        }
        if let id = object["id"] {
            if !(id.stringValue.map(PrimitiveRules.isID) ?? false) {
                report(.idInvalid, at: "id") {
                    "\($0) is not a FHIR id (1 to 64 characters from A-Z, a-z, 0-9, '-' and '.')."
                }
            }
        } else {
            report(.containedInvalid) { "\($0) has no id; a contained resource is referenced by its id." }
        }
        guard let type = ResourceType(rawValue: typeName) else { return }
        walkObject(object, definition: R4Resources.structure(for: type))
        if object["contained"] != nil {
            report(.invariantFailed, at: "contained") {
                "\($0) is present (R4 rule dom-2: a contained resource contains no resources)."
            }
        }
        if let meta = object["meta"], meta["versionId"] != nil || meta["lastUpdated"] != nil {
            report(.invariantFailed, at: "meta") {
                "\($0) has a versionId or lastUpdated (R4 rule dom-4: a contained resource has neither)."
            }
        }
        if object["meta"]?["security"] != nil {
            path.push("meta")
            report(.invariantFailed, at: "security") {
                "\($0) is present (R4 rule dom-5: a contained resource has no security labels)."
            }
            path.pop()
        }
    }

    // MARK: Reporting

    /// Reports an issue at the current path (or at its child `name`); `message` receives the written path.
    private mutating func report(_ code: ValidationCode, at name: String? = nil, _ message: (String) -> String) {
        let at = name.map { path.appending($0) } ?? path.description
        issues.append(ValidationIssue(path: at, code: code, message: message(at)))
    }

    private static func quote(_ text: String) -> String {
        let shown = text.count > quoteLimit ? text.prefix(quoteLimit) + "…" : Substring(text)
        return "\"\(shown)\""
    }
}
