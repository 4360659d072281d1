import FHIRJSON
import FHIRModel

/// Synthetic UK Core-shaped records for the scenarios: NHS numbers from the test range 999 000 0000 –
/// 999 999 9999, business identifiers per provider.
enum SyntheticRecords {
    /// `count` valid NHS numbers from `999 3xx xxxx` upward (Modulus 11 holds; 10 skipped).
    static func patients(_ count: Int, offset: Int = 0) -> [NHSNumber] {
        NHSNumber.testRange(count: count, from: 999_300_000 + offset)
    }

    static func subject(_ digits: String) -> JSON {
        ["reference": .string("Patient/\(digits)"), "identifier": ["system": .string(NHSNumber.system), "value": .string(digits)]]
    }

    static func system(_ peer: String, _ type: ResourceType) -> String {
        "https://\(peer).example.nhs.uk/Id/\(type.rawValue.lowercased())"
    }

    static func carePlan(system: String, value: String, patient: String, dailyAmount: Int = 80) -> JSON {
        [
            "resourceType": "CarePlan",
            "identifier": [["system": .string(system), "value": .string(value)]],
            "status": "active",
            "intent": "plan",
            "title": "Respiratory care plan",
            "description": "Pulmonary rehabilitation and home oxygen review after discharge.",
            "subject": subject(patient),
            "period": ["start": "2025-04-01"],
            "activity": [
                [
                    "id": "act-1",
                    "detail": [
                        "kind": "MedicationRequest",
                        "status": "in-progress",
                        "dailyAmount": [
                            "value": .number(JSONNumber(dailyAmount)), "unit": "mmol", "system": "http://unitsofmeasure.org", "code": "mmol",
                        ],
                    ],
                ]
            ],
            "note": [["text": "Prefers morning appointments."]],
        ]
    }

    static func encounter(system: String, value: String, patient: String) -> JSON {
        [
            "resourceType": "Encounter",
            "identifier": [["system": .string(system), "value": .string(value)]],
            "status": "planned",
            "class": ["system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"],
            "subject": subject(patient),
        ]
    }

    static func relatedPerson(system: String, value: String, patient: String) -> JSON {
        [
            "resourceType": "RelatedPerson",
            "identifier": [["system": .string(system), "value": .string(value)]],
            "active": true,
            "patient": subject(patient),
            "name": [["family": "Example", "given": ["Sam"]]],
            "telecom": [["system": "phone", "value": "01632 960123"]],
        ]
    }
}

/// One record a scenario puts somewhere, and where it must end up.
struct PlannedRecord: Sendable {
    var key: String
    var patient: String
    var origin: String
    var resource: JSON
}

/// The records of a sync scenario and what every peer must hold once caresync has converged.
///
/// - `records` patients' worth of records: each patient has a care plan, an encounter and a related
///   person at one provider (alternating);
/// - every 25th patient is *shared*: the other provider holds a care plan of its own for them, so the
///   hub fans each side's records out to the other;
/// - `conflicts` patients have one care plan with the same business identifier at both providers but a
///   different daily amount (a never-auto field): each must be one open conflict, no more, no less.
struct SeedPlan: Sendable {
    let providers: [String]
    private(set) var byProvider: [String: [PlannedRecord]] = [:]
    private(set) var conflictKeys: Set<String> = []

    init(records: Int, providers: [String], conflicts: Int, patientOffset: Int = 0, prefix: String = "R") {
        self.providers = providers
        let patientCount = max(1, records / 3)
        let patients = SyntheticRecords.patients(patientCount + conflicts, offset: patientOffset)
        for (index, patient) in patients.prefix(patientCount).enumerated() {
            let home = providers[index % providers.count]
            let value = "\(prefix)-\(index)"
            add(home, patient.digits, SyntheticRecords.carePlan(system: SyntheticRecords.system(home, .carePlan), value: "CP-" + value, patient: patient.digits))
            add(home, patient.digits, SyntheticRecords.encounter(system: SyntheticRecords.system(home, .encounter), value: "ENC-" + value, patient: patient.digits))
            add(home, patient.digits, SyntheticRecords.relatedPerson(system: SyntheticRecords.system(home, .relatedPerson), value: "RP-" + value, patient: patient.digits))
            if index % 25 == 7, providers.count > 1 {
                let other = providers[(index + 1) % providers.count]
                add(other, patient.digits, SyntheticRecords.carePlan(system: SyntheticRecords.system(other, .carePlan), value: "CP-S-" + value, patient: patient.digits))
            }
        }
        for (index, patient) in patients.suffix(conflicts).enumerated() where providers.count > 1 {
            let system = "https://shared.example.nhs.uk/Id/care-plan"
            for (position, provider) in providers.prefix(2).enumerated() {
                add(provider, patient.digits, SyntheticRecords.carePlan(system: system, value: "\(prefix)-CONFLICT-\(index)", patient: patient.digits, dailyAmount: 80 + position * 10))
            }
            conflictKeys.insert("CarePlan|\(system)|\(prefix)-CONFLICT-\(index)")
        }
    }

    private mutating func add(_ provider: String, _ patient: String, _ resource: JSON) {
        let key = ResourceIdentity(resource)?.globalKey?.description ?? "?"
        byProvider[provider, default: []].append(PlannedRecord(key: key, patient: patient, origin: provider, resource: resource))
    }

    /// Records created at `provider` during a scenario (of a patient no other provider holds).
    mutating func addExtra(_ keys: [String], at provider: String) {
        for key in keys {
            byProvider[provider, default: []].append(PlannedRecord(key: key, patient: "extra-\(provider)", origin: provider, resource: .null))
        }
    }

    /// Adds another plan's records (a second batch).
    mutating func absorb(_ other: SeedPlan) {
        for (provider, records) in other.byProvider { byProvider[provider, default: []] += records }
        conflictKeys.formUnion(other.conflictKeys)
    }

    /// Every record key the hub must hold exactly once.
    var hubKeys: Set<String> {
        Set(byProvider.values.joined().map(\.key))
    }

    /// Every record key `provider` must hold exactly once: its own, and (fan-out) every record of each
    /// patient it holds.
    func keys(at provider: String) -> Set<String> {
        let held = Set((byProvider[provider] ?? []).map(\.patient))
        return Set(byProvider.values.joined().filter { held.contains($0.patient) }.map(\.key))
    }

    var recordCount: Int { byProvider.values.map(\.count).reduce(0, +) }
}
