public import FHIRJSON

/// Validates one FHIR R4 resource (CarePlan, Encounter, RelatedPerson or Patient) and reports every issue
/// found, each with a FHIRPath-like path, a stable code and a sentence (DESIGN §9; codes in
/// `docs/validation.md`). Pure: the caller reads the bytes.
///
/// Checks, in order: size and depth limits; JSON well-formedness (UTF-8, duplicate keys); `resourceType`
/// (present, as expected, one caresync knows); `id` (form, presence when required, equal to the URL id);
/// server-assigned metadata when ``requiresServerMetadata``; then the whole tree against the R4 element
/// tables (unknown elements, `modifierExtension`, cardinality, primitive forms, required value sets,
/// primitive extensions, duplicate list keys, invariants such as per-1); then, for the ``ValidationProfile/caresync``
/// profile, the sync rules. Contained resources of the four known types are validated fully; contained
/// resources of other types are checked only for being objects with a `resourceType` and an `id`.
public struct ResourceValidator: Sendable {
    /// The rules applied.
    public var profile: ValidationProfile
    /// Size and nesting limits.
    public var limits: ValidationLimits
    /// Whether `id`, `meta.versionId` and `meta.lastUpdated` must be present: true for what a server
    /// returned, false for a resource about to be created (it has no server metadata yet).
    public var requiresServerMetadata: Bool

    /// - Parameters:
    ///   - profile: the rules applied (default ``ValidationProfile/caresync``).
    ///   - limits: size and nesting limits (default 2 MiB, depth 64).
    ///   - requiresServerMetadata: require `id`, `meta.versionId` and `meta.lastUpdated`.
    public init(
        profile: ValidationProfile = .caresync, limits: ValidationLimits = ValidationLimits(),
        requiresServerMetadata: Bool = false
    ) {
        self.profile = profile
        self.limits = limits
        self.requiresServerMetadata = requiresServerMetadata
    }

    /// Validates a resource given as UTF-8 JSON bytes.
    /// - Parameters:
    ///   - bytes: the document.
    ///   - expectedType: the type the caller asked for (e.g. from the URL); `nil` accepts any known type.
    ///   - expectedID: the id in the URL (`PUT [type]/[id]`, a read); `nil` when there is none.
    public func validate(bytes: [UInt8], expectedType: ResourceType? = nil, expectedID: String? = nil) -> ValidationReport {
        let rootPath = expectedType?.rawValue ?? "Resource"
        if let issue = sizeIssue(byteCount: bytes.count, expectedType: expectedType) {
            return ValidationReport(profile: profile, resource: nil, resourceType: nil, issues: [issue])
        }
        let resource: JSON
        do throws(JSONParseError) {
            resource = try JSON.parse(bytes, options: JSONParseOptions(maxDepth: limits.maxDepth))
        } catch {
            let code: ValidationCode =
                switch error.code {
                case .invalidUTF8: .invalidUTF8
                case .duplicateKey: .duplicateKey
                case .tooDeep: .tooDeep
                default: .notJSON
                }
            return failure(
                rootPath, code, "The document is not acceptable JSON: \(error.message) (line \(error.line), column \(error.column)).")
        }
        return validateTree(resource, expectedType: expectedType, expectedID: expectedID)
    }

    /// Validates an already parsed resource. The size limit applies to its compact serialisation (counted,
    /// not written).
    public func validate(_ resource: JSON, expectedType: ResourceType? = nil, expectedID: String? = nil) -> ValidationReport {
        let rootPath = expectedType?.rawValue ?? "Resource"
        var measure = DocumentMeasure()
        measure.add(resource, depth: 1)
        if measure.depth > limits.maxDepth {
            return failure(
                rootPath, .tooDeep, "The document nests \(measure.depth) levels deep, over the limit of \(limits.maxDepth).")
        }
        if let issue = sizeIssue(byteCount: measure.bytes, expectedType: expectedType) {
            return ValidationReport(profile: profile, resource: nil, resourceType: nil, issues: [issue])
        }
        return validateTree(resource, expectedType: expectedType, expectedID: expectedID)
    }

    /// The `too-large` issue for a document of `byteCount` bytes, or `nil` within the limit. Lets a caller
    /// refuse a large file by its size before reading it.
    public func sizeIssue(byteCount: Int, expectedType: ResourceType? = nil) -> ValidationIssue? {
        guard byteCount > limits.maxBytes else { return nil }
        return ValidationIssue(
            path: expectedType?.rawValue ?? "Resource", code: .tooLarge,
            message: "The document is \(byteCount) bytes, over the limit of \(limits.maxBytes) bytes.")
    }

    // MARK: Steps

    private func failure(_ path: String, _ code: ValidationCode, _ message: String) -> ValidationReport {
        ValidationReport(
            profile: profile, resource: nil, resourceType: nil, issues: [ValidationIssue(path: path, code: code, message: message)])
    }

    private func validateTree(_ resource: JSON, expectedType: ResourceType?, expectedID: String?) -> ValidationReport {
        var issues: [ValidationIssue] = []
        let rootPath = expectedType?.rawValue ?? "Resource"
        func finish(_ type: ResourceType?) -> ValidationReport {
            ValidationReport(profile: profile, resource: resource, resourceType: type, issues: issues)
        }
        guard case .object(let object) = resource else {
            issues.append(
                ValidationIssue(
                    path: rootPath, code: .notAResource,
                    message: "The document is a JSON \(resource.kindName), not a FHIR resource (a JSON object)."))
            return finish(nil)
        }
        guard let typeName = object["resourceType"]?.stringValue else {
            issues.append(
                ValidationIssue(
                    path: "\(rootPath).resourceType", code: .resourceTypeMissing,
                    message: "\(rootPath).resourceType is \(object["resourceType"] == nil ? "absent" : "not a string"); "
                        + "every FHIR resource names its type."))
            return finish(nil)
        }
        if let expectedType, typeName != expectedType.rawValue {
            issues.append(
                ValidationIssue(
                    path: "\(rootPath).resourceType", code: .resourceTypeMismatch,
                    message: "\(rootPath).resourceType is \(quoted(typeName)) but a \(expectedType.rawValue) was expected."))
            return finish(nil)
        }
        guard let type = ResourceType(rawValue: typeName) else {
            issues.append(
                ValidationIssue(
                    path: "\(rootPath).resourceType", code: .resourceTypeUnsupported,
                    message: "\(rootPath).resourceType is \(quoted(typeName)); caresync handles CarePlan, Encounter, "
                        + "RelatedPerson and Patient only."))
            return finish(nil)
        }
        let path = type.rawValue
        checkIdentity(object, path: path, expectedID: expectedID, issues: &issues)

        let containedIDs = Set((object["contained"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue })
        var walker = StructureWalker(context: ValidationContext(profile: profile, containedIDs: containedIDs), root: path)
        walker.walkObject(object, definition: R4Resources.structure(for: type))
        issues += walker.issues
        if profile == .caresync {
            CaresyncRules.check(object, type: type, path: path, issues: &issues)
        }
        return finish(type)
    }

    /// `id` form, presence and agreement with the URL; server metadata when required.
    private func checkIdentity(_ object: JSONObject, path: String, expectedID: String?, issues: inout [ValidationIssue]) {
        if let id = object["id"] {
            if let text = id.stringValue, PrimitiveRules.isID(text) {
                if let expectedID, text != expectedID {
                    issues.append(
                        ValidationIssue(
                            path: "\(path).id", code: .idMismatch,
                            message: "\(path).id is \(quoted(text)) but the URL names \(quoted(expectedID)); they must agree."))
                }
            } else {
                issues.append(
                    ValidationIssue(
                        path: "\(path).id", code: .idInvalid,
                        message: "\(path).id is not a FHIR id (1 to 64 characters from A-Z, a-z, 0-9, '-' and '.')."))
            }
        } else if requiresServerMetadata || expectedID != nil {
            issues.append(
                ValidationIssue(
                    path: "\(path).id", code: .idMissing,
                    message: "\(path).id is absent; a resource read from or updated on a server has its id."))
        }
        guard requiresServerMetadata else { return }
        let meta = object["meta"]
        if meta?["versionId"] == nil {
            issues.append(
                ValidationIssue(
                    path: "\(path).meta.versionId", code: .versionIDMissing,
                    message: "\(path).meta.versionId is absent; a server assigns every stored version one."))
        }
        if meta?["lastUpdated"] == nil {
            issues.append(
                ValidationIssue(
                    path: "\(path).meta.lastUpdated", code: .lastUpdatedMissing,
                    message: "\(path).meta.lastUpdated is absent; a server stamps every stored version with an instant."))
        }
    }

    private func quoted(_ text: String) -> String {
        "\"\(text.count > 64 ? text.prefix(64) + "…" : Substring(text))\""
    }
}

/// The compact serialisation size and the nesting depth of a JSON value, in one walk without writing it.
private struct DocumentMeasure {
    var bytes = 0
    var depth = 0

    /// Adds `value`, whose arrays and objects sit at nesting level `depth`.
    mutating func add(_ value: JSON, depth level: Int) {
        switch value {
        case .null: bytes += 4
        case .bool(let flag): bytes += flag ? 4 : 5
        case .number(let number): bytes += number.text.utf8.count
        case .string(let text): addString(text)
        case .array(let items):
            depth = max(depth, level)
            bytes += 2 + max(0, items.count - 1)
            for item in items { add(item, depth: level + 1) }
        case .object(let object):
            depth = max(depth, level)
            bytes += 2 + max(0, object.count - 1) + object.count  // braces, commas, colons
            for member in object.members {
                addString(member.key)
                add(member.value, depth: level + 1)
            }
        }
    }

    /// A string as the compact writer escapes it: quotes, `\"` `\\` `\n` `\r` `\t` `\b` `\f`, other
    /// control characters as `\u00XX`.
    private mutating func addString(_ text: String) {
        bytes += 2
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x0A, 0x0D, 0x09, 0x08, 0x0C: bytes += 2
            case 0..<0x20: bytes += 6
            default: bytes += 1
            }
        }
    }
}
