import FHIRJSON
import FHIRModel

/// The one place a resource is checked before the store accepts it (create, update, Bundle entries).
///
/// The minimal rules a FHIR server cannot do without always apply; with ``StoreValidation/r4`` the
/// resource must also pass `FHIRModel`'s R4 validator.
enum ResourceCheck {
    private static let r4Validator = ResourceValidator(profile: .r4)

    /// The resource types the store serves (FHIRModel's types: CarePlan, Encounter, RelatedPerson, Patient).
    static let supportedTypes: [String] = ResourceType.allCases.map(\.rawValue).sorted()

    /// Whether the store serves `type`.
    static func isSupported(_ type: String) -> Bool { ResourceType(rawValue: type) != nil }

    /// Every rule `resource` breaks as a resource of `expectedType` under `validation`; empty when it
    /// is acceptable.
    static func problems(in resource: JSONObject, expectedType: String, validation: StoreValidation) -> [OutcomeIssue] {
        let issues = minimalProblems(in: resource, expectedType: expectedType)
        guard issues.isEmpty, validation == .r4 else { return issues }
        let report = r4Validator.validate(.object(resource), expectedType: ResourceType(rawValue: expectedType))
        return report.issues.map { issue in
            OutcomeIssue(code: "invalid", diagnostics: "\(issue.message) [\(issue.code)]", expression: [issue.path])
        }
    }

    /// The rules every stored resource meets: `resourceType` is present, a string, a type the store serves
    /// and the type in the URL; `id`, when present, is a FHIR id; `meta`, when present, is an object.
    private static func minimalProblems(in resource: JSONObject, expectedType: String) -> [OutcomeIssue] {
        var issues: [OutcomeIssue] = []
        switch resource["resourceType"] {
        case nil:
            issues.append(OutcomeIssue(code: "required", diagnostics: "resourceType is missing", expression: ["resourceType"]))
        case .string(let type)?:
            if type != expectedType {
                issues.append(
                    OutcomeIssue(
                        code: "invalid",
                        diagnostics: "resourceType \(type) does not match the type in the request URL (\(expectedType))",
                        expression: ["resourceType"]
                    )
                )
            }
        case let other?:
            issues.append(
                OutcomeIssue(code: "structure", diagnostics: "resourceType must be a string, not \(other.kindName)", expression: ["resourceType"])
            )
        }
        switch resource["id"] {
        case nil: break
        case .string(let id)?:
            if !isValidID(id) {
                issues.append(
                    OutcomeIssue(
                        code: "value",
                        diagnostics: "id must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'",
                        expression: ["\(expectedType).id"]
                    )
                )
            }
        case let other?:
            issues.append(
                OutcomeIssue(code: "structure", diagnostics: "id must be a string, not \(other.kindName)", expression: ["\(expectedType).id"])
            )
        }
        if let meta = resource["meta"], meta.objectValue == nil {
            issues.append(
                OutcomeIssue(code: "structure", diagnostics: "meta must be an object, not \(meta.kindName)", expression: ["\(expectedType).meta"])
            )
        }
        return issues
    }

    /// Whether `text` is a FHIR `id`: 1 to 64 characters of `A-Z a-z 0-9 - .`.
    static func isValidID(_ text: some StringProtocol) -> Bool {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.count <= 64 else { return false }
        return bytes.allSatisfy { byte in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
    }
}
