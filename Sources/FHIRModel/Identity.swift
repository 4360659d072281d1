public import FHIRJSON

/// A FHIR business identifier (`Identifier.system` + `Identifier.value`).
public struct BusinessIdentifier: Sendable, Hashable, Codable, CustomStringConvertible {
    public let system: String
    public let value: String

    public init(system: String, value: String) {
        self.system = system
        self.value = value
    }

    /// The `system|value` token form used in FHIR search (`identifier=system|value`).
    public var token: String { "\(system)|\(value)" }

    public var description: String { token }
}

/// The global key of a record across all peers: its type and one business identifier.
///
/// The same care plan has a different `id` at every peer; the global key is what they share.
public struct GlobalKey: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public let resourceType: ResourceType
    public let identifier: BusinessIdentifier

    public init(resourceType: ResourceType, identifier: BusinessIdentifier) {
        self.resourceType = resourceType
        self.identifier = identifier
    }

    /// The identifier caresync mints for a record that arrived from `ods` without one:
    /// system `urn:caresync:<ODS>:<type>`, value = the record's id at that peer.
    public static func minted(resourceType: ResourceType, originODS ods: String, localID: String) -> GlobalKey {
        GlobalKey(
            resourceType: resourceType,
            identifier: BusinessIdentifier(system: "urn:caresync:\(ods):\(resourceType.rawValue)", value: localID)
        )
    }

    /// `Type|system|value`.
    public var description: String { "\(resourceType.rawValue)|\(identifier.token)" }

    public static func < (lhs: GlobalKey, rhs: GlobalKey) -> Bool { lhs.description < rhs.description }
}

/// What caresync needs to know about a resource to route it: type, server id and version, business
/// identifiers and the NHS number of the patient it belongs to. Read leniently; ``ResourceValidator``
/// (in this module) is what rejects bad input.
public struct ResourceIdentity: Sendable, Hashable {
    public let resourceType: ResourceType
    public let id: String?
    public let versionId: String?
    public let lastUpdated: FHIRInstant?
    /// Every identifier with both a system and a value, in document order.
    public let identifiers: [BusinessIdentifier]
    /// The patient's NHS number: from `subject`/`patient` (`Reference.identifier`, or a conditional
    /// reference `Patient?identifier=…nhs-number|…`), or from `Patient.identifier`. `nil` when absent or invalid.
    public let nhsNumber: NHSNumber?

    /// Reads the identity of `resource`; `nil` when `resourceType` is missing or not one caresync knows.
    public init?(_ resource: JSON) {
        guard let typeName = resource["resourceType"]?.stringValue, let type = ResourceType(rawValue: typeName) else {
            return nil
        }
        self.resourceType = type
        self.id = resource["id"]?.stringValue
        self.versionId = resource["meta"]?["versionId"]?.stringValue
        self.lastUpdated = resource["meta"]?["lastUpdated"]?.stringValue.flatMap(FHIRInstant.init)
        self.identifiers = ResourceIdentity.identifiers(in: resource["identifier"])
        self.nhsNumber = ResourceIdentity.nhsNumbers(of: resource, type: type).first
    }

    /// The primary global key: the first complete business identifier, if any.
    public var globalKey: GlobalKey? {
        identifiers.first.map { GlobalKey(resourceType: resourceType, identifier: $0) }
    }

    /// Every global key this resource can be known by (one per business identifier).
    public var globalKeys: [GlobalKey] {
        identifiers.map { GlobalKey(resourceType: resourceType, identifier: $0) }
    }

    /// Complete identifiers (system and value both present) from an `identifier` list or single value.
    public static func identifiers(in value: JSON?) -> [BusinessIdentifier] {
        let elements: [JSON] = value?.arrayValue ?? value.map { [$0] } ?? []
        return elements.compactMap { element in
            guard let system = element["system"]?.stringValue, let value = element["value"]?.stringValue else {
                return nil
            }
            return BusinessIdentifier(system: system, value: value)
        }
    }

    /// The raw NHS number texts that `resource` gives for its patient, valid or not, in document order.
    public static func nhsNumberTexts(of resource: JSON, type: ResourceType) -> [String] {
        if type == .patient {
            return identifiers(in: resource["identifier"]).filter { $0.system == NHSNumber.system }.map(\.value)
        }
        guard let element = type.patientReferenceElement, let reference = resource[element] else { return [] }
        var texts = identifiers(in: reference["identifier"]).filter { $0.system == NHSNumber.system }.map(\.value)
        let conditionalPrefix = "Patient?identifier=\(NHSNumber.system)|"
        if let target = reference["reference"]?.stringValue, target.hasPrefix(conditionalPrefix) {
            let number = String(target.dropFirst(conditionalPrefix.count))
            if !texts.contains(number) { texts.append(number) }
        }
        return texts
    }

    private static func nhsNumbers(of resource: JSON, type: ResourceType) -> [NHSNumber] {
        nhsNumberTexts(of: resource, type: type).compactMap { try? NHSNumber(validating: $0) }
    }
}
