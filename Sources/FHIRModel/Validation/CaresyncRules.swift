import FHIRJSON

/// The NHS number rules on identifiers, wherever an Identifier appears (attached to the Identifier table).
enum NHSNumberRules {
    /// Both profiles: a value under `https://fhir.nhs.uk/Id/nhs-number` is a valid NHS number.
    /// caresync profile: a system that is a misspelling of that URI is reported.
    static let identifierInvariant = Invariant("nhs-number") { object, path, context, issues in
        guard let system = object["system"]?.stringValue else { return }
        if system == NHSNumber.system {
            guard let value = object["value"]?.stringValue else { return }
            if let issue = problem(with: value, at: path.appending("value")) { issues.append(issue) }
        } else if context.profile == .caresync, isMisspelledSystem(system) {
            issues.append(misspelledSystemIssue(at: path.appending("system")))
        }
    }

    /// The issue for `text` at `path` when it is not a valid NHS number; the message never quotes the number.
    static func problem(with text: String, at path: String) -> ValidationIssue? {
        do throws(NHSNumber.Problem) {
            _ = try NHSNumber(validating: text)
            return nil
        } catch {
            return ValidationIssue(path: path, code: ValidationCode(error), message: "\(path) is not a valid NHS number: \(error.message).")
        }
    }

    static func misspelledSystemIssue(at path: String) -> ValidationIssue {
        ValidationIssue(
            path: path, code: .nhsNumberSystem,
            message: "\(path) is a misspelling of the NHS number system; it is exactly \(NHSNumber.system) "
                + "(https, no trailing slash).")
    }

    /// A cheap first look, without allocating: `nhs` or `oid` (the NHS number has an OID) in any case.
    private static func mentionsNHS(_ system: String) -> Bool {
        var previous: (UInt8, UInt8) = (0, 0)
        for byte in system.utf8 {
            let lower = byte | 0x20
            switch (previous.0, previous.1, lower) {
            case (UInt8(ascii: "n"), UInt8(ascii: "h"), UInt8(ascii: "s")), (UInt8(ascii: "o"), UInt8(ascii: "i"), UInt8(ascii: "d")):
                return true
            default:
                previous = (previous.1, lower)
            }
        }
        return false
    }

    /// Whether `system` is meant as the NHS number system but is not spelt exactly: `http://`, a trailing
    /// slash, other letter case, surrounding spaces, `nhs_number`/`nhsnumber`, the retired
    /// `fhir.nhs.net` host, or the NHS number OID `urn:oid:2.16.840.1.113883.2.1.4.1`.
    static func isMisspelledSystem(_ system: String) -> Bool {
        guard system != NHSNumber.system, mentionsNHS(system) else { return false }
        var text = Substring(system.lowercased())
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace || last == "/" { text.removeLast() }
        if text == "urn:oid:2.16.840.1.113883.2.1.4.1" { return true }
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) {
            text.removeFirst(scheme.count)
        }
        for host in ["fhir.nhs.uk/", "fhir.nhs.net/"] where text.hasPrefix(host) {
            text.removeFirst(host.count)
            text.removeAll { $0 == "-" || $0 == "_" }
            return text == "id/nhsnumber"
        }
        return false
    }
}

/// The caresync sync rules that the `caresync` profile adds to R4: the record names its patient by exactly
/// one valid NHS number, the reference points at a Patient, and business identifiers are usable keys.
enum CaresyncRules {
    static func check(_ resource: JSONObject, type: ResourceType, path: String, issues: inout [ValidationIssue]) {
        checkPatientAnchor(resource, type: type, path: path, issues: &issues)
        checkBusinessIdentifiers(resource, path: path, issues: &issues)
    }

    /// An NHS number found for the patient, with where it was found.
    private struct FoundNumber {
        let text: String
        let path: String
    }

    private static func checkPatientAnchor(
        _ resource: JSONObject, type: ResourceType, path: String, issues: inout [ValidationIssue]
    ) {
        var numbers: [FoundNumber] = []
        var sawMisspelledSystem = false
        let anchorPath: String
        if let element = type.patientReferenceElement {
            anchorPath = "\(path).\(element)"
            guard let reference = resource[element] else {
                // R4 already requires CarePlan.subject and RelatedPerson.patient; Encounter.subject is 0..1 there.
                if type == .encounter {
                    issues.append(
                        ValidationIssue(
                            path: anchorPath, code: .requiredMissing,
                            message: "\(anchorPath) is required by caresync: every synchronised record names its patient."
                        ))
                }
                return
            }
            guard let object = reference.objectValue else { return }  // the R4 walk reported the shape
            checkPointsAtPatient(object, path: anchorPath, issues: &issues)
            if let identifier = object["identifier"]?.objectValue, let system = identifier["system"]?.stringValue {
                if system == NHSNumber.system, let value = identifier["value"]?.stringValue {
                    numbers.append(FoundNumber(text: value, path: "\(anchorPath).identifier.value"))
                } else if NHSNumberRules.isMisspelledSystem(system) {
                    sawMisspelledSystem = true
                }
            }
            if let target = object["reference"]?.stringValue, let (system, value) = conditionalIdentifier(target) {
                let referencePath = "\(anchorPath).reference"
                if system == NHSNumber.system {
                    if let issue = NHSNumberRules.problem(with: value, at: referencePath) { issues.append(issue) }
                    numbers.append(FoundNumber(text: value, path: referencePath))
                } else if NHSNumberRules.isMisspelledSystem(system) {
                    sawMisspelledSystem = true
                    issues.append(NHSNumberRules.misspelledSystemIssue(at: referencePath))
                }
            }
        } else {
            anchorPath = "\(path).identifier"
            for (index, item) in (resource["identifier"]?.arrayValue ?? []).enumerated() {
                guard let system = item["system"]?.stringValue else { continue }
                if system == NHSNumber.system, let value = item["value"]?.stringValue {
                    numbers.append(FoundNumber(text: value, path: "\(anchorPath)[\(index)].value"))
                } else if NHSNumberRules.isMisspelledSystem(system) {
                    sawMisspelledSystem = true
                }
            }
        }
        if numbers.isEmpty {
            if !sawMisspelledSystem {
                let where_ = type == .patient ? anchorPath : "\(anchorPath).identifier"
                issues.append(
                    ValidationIssue(
                        path: where_, code: .nhsNumberMissing,
                        message: "\(where_) carries no NHS number (system \(NHSNumber.system)); caresync matches "
                            + "records to patients by NHS number only."))
            }
        } else if let different = numbers.first(where: { $0.text != numbers[0].text }) {
            issues.append(
                ValidationIssue(
                    path: different.path, code: .nhsNumberConflict,
                    message: "\(different.path) gives a different NHS number from \(numbers[0].path); a record "
                        + "belongs to exactly one patient."))
        }
    }

    /// The subject/patient reference must point at a Patient when it says what it points at.
    private static func checkPointsAtPatient(_ reference: JSONObject, path: String, issues: inout [ValidationIssue]) {
        if let type = reference["type"]?.stringValue, type != "Patient" {
            issues.append(
                ValidationIssue(
                    path: "\(path).type", code: .subjectNotPatient,
                    message: "\(path).type is \"\(type)\"; caresync synchronises records about one Patient only."))
        }
        if let target = reference["reference"]?.stringValue, let type = referencedType(target), type != "Patient" {
            issues.append(
                ValidationIssue(
                    path: "\(path).reference", code: .subjectNotPatient,
                    message: "\(path).reference points at a \(type); caresync synchronises records about one Patient only."
                ))
        }
    }

    /// Resource-level business identifiers are the records' global keys: each has a system (an absolute
    /// URI) and a value.
    private static func checkBusinessIdentifiers(_ resource: JSONObject, path: String, issues: inout [ValidationIssue]) {
        for (index, item) in (resource["identifier"]?.arrayValue ?? []).enumerated() {
            guard let identifier = item.objectValue else { continue }
            let itemPath = "\(path).identifier[\(index)]"
            let system = identifier["system"]?.stringValue
            if system == nil || identifier["value"]?.stringValue == nil {
                issues.append(
                    ValidationIssue(
                        path: itemPath, code: .identifierIncomplete,
                        message: "\(itemPath) lacks a \(system == nil ? "system" : "value"); caresync keys records by "
                            + "identifier system and value together."))
            } else if let system, !isAbsoluteURI(system) {
                issues.append(
                    ValidationIssue(
                        path: "\(itemPath).system", code: .identifierSystemInvalid,
                        message: "\(itemPath).system is not an absolute URI (scheme:rest, e.g. https://… or urn:oid:…)."))
            }
        }
    }

    /// `Patient?identifier=system|value` → (system, value).
    private static func conditionalIdentifier(_ reference: String) -> (String, String)? {
        let prefix = "Patient?identifier="
        guard reference.hasPrefix(prefix) else { return nil }
        let token = reference.dropFirst(prefix.count)
        guard let bar = token.firstIndex(of: "|") else { return nil }
        return (String(token[..<bar]), String(token[token.index(after: bar)...]))
    }

    /// The resource type a literal reference names: `Patient/1`, `https://host/fhir/Group/2/_history/3`,
    /// `Group?identifier=…`. `nil` for local (`#x`), `urn:` and unparseable references.
    static func referencedType(_ reference: String) -> String? {
        guard !reference.hasPrefix("#"), !reference.hasPrefix("urn:") else { return nil }
        let text = Substring(reference)
        if let query = text.firstIndex(of: "?") {
            let beforeQuery = text[..<query]
            let name = beforeQuery.split(separator: "/").last ?? beforeQuery
            return isTypeName(name) ? String(name) : nil
        }
        var parts = text.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count >= 2, parts[parts.count - 2] == "_history" { parts.removeLast(2) }
        guard parts.count >= 2 else { return nil }
        let name = parts[parts.count - 2]
        return isTypeName(name) ? String(name) : nil
    }

    private static func isTypeName(_ text: Substring) -> Bool {
        guard let first = text.unicodeScalars.first, ("A"..."Z").contains(first) else { return false }
        return text.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) || ("a"..."z").contains($0) }
    }

    /// `scheme:rest` with a scheme of letters, digits, `+`, `-`, `.` (whitespace is the R4 uri check's job).
    private static func isAbsoluteURI(_ text: String) -> Bool {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex, text.index(after: colon) != text.endIndex
        else { return false }
        let scheme = text[..<colon]
        guard let first = scheme.unicodeScalars.first, ("a"..."z").contains(first) || ("A"..."Z").contains(first)
        else { return false }
        let schemeOK = scheme.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "+-.".unicodeScalars.contains($0)
        }
        return schemeOK
    }
}
