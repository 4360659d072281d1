/// The FHIR resource types caresync knows. `Patient` is read only, to anchor identity.
public enum ResourceType: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    case carePlan = "CarePlan"
    case encounter = "Encounter"
    case relatedPerson = "RelatedPerson"
    case patient = "Patient"

    /// The types that are synchronised between peers, in sync order.
    public static let synchronised: [ResourceType] = [.carePlan, .encounter, .relatedPerson]

    /// The element of this type that references the patient (`subject` or `patient`); `nil` for `Patient`.
    public var patientReferenceElement: String? {
        switch self {
        case .carePlan, .encounter: "subject"
        case .relatedPerson: "patient"
        case .patient: nil
        }
    }

    public static func < (lhs: ResourceType, rhs: ResourceType) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}
