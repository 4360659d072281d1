import FHIRJSON
import FHIRModel

/// The search parameters the store indexes, per resource type, and the index rows of a resource.
///
/// Every type: `_id`, `_lastUpdated`, `identifier`. CarePlan and Encounter: `subject` (Patient or Group)
/// and `patient` (the subject when it is a Patient). RelatedPerson: `patient`. A reference parameter
/// matches a literal reference (`Patient/123`, an absolute URL ending so, or a bare id) and, with the
/// `:identifier` modifier, the reference's `identifier` or a conditional reference
/// `Patient?identifier=system|value` — how NHS records name their patient by NHS number.
enum SearchParameters {
    /// A search parameter over a `Reference` element.
    struct ReferenceParameter: Sendable {
        /// The parameter name (`subject`, `patient`).
        var name: String
        /// The element it reads.
        var element: String
        /// The resource types it may point to.
        var targets: [String]
    }

    static func references(of type: String) -> [ReferenceParameter] {
        switch type {
        case ResourceType.carePlan.rawValue, ResourceType.encounter.rawValue:
            [
                ReferenceParameter(name: "subject", element: "subject", targets: ["Patient", "Group"]),
                ReferenceParameter(name: "patient", element: "subject", targets: ["Patient"]),
            ]
        case ResourceType.relatedPerson.rawValue:
            [ReferenceParameter(name: "patient", element: "patient", targets: ["Patient"])]
        default:
            []
        }
    }

    /// The index rows of `resource` (a `type`): its identifiers and the references above.
    static func tokens(of resource: JSONObject, type: String) -> [SearchToken] {
        var tokens: [SearchToken] = []
        for identifier in elements(resource["identifier"]) {
            if let value = identifier["value"]?.stringValue {
                tokens.append(SearchToken(param: "identifier", system: identifier["system"]?.stringValue ?? "", value: value))
            }
        }
        for parameter in references(of: type) {
            for reference in elements(resource[parameter.element]) {
                tokens += referenceTokens(reference, parameter: parameter)
            }
        }
        return tokens
    }

    private static func referenceTokens(_ reference: JSON, parameter: ReferenceParameter) -> [SearchToken] {
        var tokens: [SearchToken] = []
        let declaredType = reference["type"]?.stringValue
        if let text = reference["reference"]?.stringValue {
            if let question = text.firstIndex(of: "?") {
                // Conditional reference: `Patient?identifier=system|value`.
                let targetType = String(text[..<question])
                if parameter.targets.contains(targetType) {
                    for item in QueryItem.parse(text[text.index(after: question)...]) where item.name == "identifier" {
                        if let token = TokenValue(item.value), let value = token.value {
                            tokens.append(SearchToken(param: parameter.name + ":identifier", system: token.system ?? "", value: value))
                        }
                    }
                }
            } else if let literal = literalReference(text), parameter.targets.contains(literal.type) {
                tokens.append(SearchToken(param: parameter.name, system: "", value: "\(literal.type)/\(literal.id)"))
            }
        }
        if let identifier = reference["identifier"], let value = identifier["value"]?.stringValue {
            if declaredType.map(parameter.targets.contains) ?? true {
                tokens.append(SearchToken(param: parameter.name + ":identifier", system: identifier["system"]?.stringValue ?? "", value: value))
            }
        }
        return tokens
    }

    /// `Type/id` from `Type/id`, `Type/id/_history/n` or `http://host/base/Type/id[/_history/n]`.
    static func literalReference(_ text: String) -> (type: String, id: String)? {
        var segments = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if segments.count >= 2, segments[segments.count - 2] == "_history" { segments.removeLast(2) }
        guard segments.count >= 2 else { return nil }
        let type = segments[segments.count - 2]
        let id = segments[segments.count - 1]
        guard let first = type.unicodeScalars.first, first.properties.isUppercase, ResourceCheck.isValidID(id) else { return nil }
        return (type, id)
    }

    private static func elements(_ value: JSON?) -> [JSON] {
        switch value {
        case .array(let elements)?: elements
        case .object(let object)?: [.object(object)]
        default: []
        }
    }
}

/// A token search value: `value`, `system|value`, `|value` (no system) or `system|` (any value).
struct TokenValue: Sendable, Hashable {
    /// `nil` matches any system; `""` matches identifiers without one.
    var system: String?
    /// `nil` matches any value.
    var value: String?

    init(system: String?, value: String?) {
        self.system = system
        self.value = value
    }

    init?(_ text: String) {
        if let bar = text.firstIndex(of: "|") {
            system = String(text[..<bar])
            let rest = String(text[text.index(after: bar)...])
            value = rest.isEmpty ? nil : rest
            if value == nil && system == "" { return nil }
        } else {
            guard !text.isEmpty else { return nil }
            system = nil
            value = text
        }
    }
}
