import FHIRJSON
import FHIRModel

/// Synthetic records for the sync tests: NHS numbers from the test range 999 000 0000 – 999 999 9999.
enum Records {
    static func patients(_ count: Int, offset: Int = 0) -> [NHSNumber] {
        NHSNumber.testRange(count: count, from: 999_100_000 + offset)
    }

    static func subject(_ patient: String) -> JSON {
        ["reference": .string("Patient/\(patient)"), "identifier": ["system": .string(NHSNumber.system), "value": .string(patient)]]
    }

    static func carePlanSystem(_ peer: String) -> String { "https://\(peer).example.nhs.uk/Id/care-plan" }

    static func carePlan(_ peer: String, _ value: String, patient: NHSNumber, dailyAmount: Int = 80) -> JSON {
        carePlan(peer, value, patientDigits: patient.digits, dailyAmount: dailyAmount)
    }

    static func carePlan(_ peer: String, _ value: String, patientDigits: String, dailyAmount: Int = 80) -> JSON {
        [
            "resourceType": "CarePlan",
            "identifier": [["system": .string(carePlanSystem(peer)), "value": .string(value)]],
            "status": "active",
            "intent": "plan",
            "title": "Respiratory care plan",
            "description": "Pulmonary rehabilitation.",
            "subject": subject(patientDigits),
            "activity": [
                [
                    "id": "act-1",
                    "detail": [
                        "kind": "MedicationRequest",
                        "status": "in-progress",
                        "dailyAmount": ["value": .number(JSONNumber(dailyAmount)), "unit": "mmol", "system": "http://unitsofmeasure.org", "code": "mmol"],
                    ],
                ]
            ],
            "note": [["text": "Prefers morning appointments."]],
        ]
    }

    static func encounter(_ peer: String, _ value: String, patient: NHSNumber) -> JSON {
        [
            "resourceType": "Encounter",
            "identifier": [["system": .string("https://\(peer).example.nhs.uk/Id/encounter"), "value": .string(value)]],
            "status": "planned",
            "class": ["system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"],
            "subject": subject(patient.digits),
        ]
    }

    static func relatedPerson(_ peer: String, _ value: String, patient: NHSNumber) -> JSON {
        [
            "resourceType": "RelatedPerson",
            "identifier": [["system": .string("https://\(peer).example.nhs.uk/Id/related-person"), "value": .string(value)]],
            "active": true,
            "patient": subject(patient.digits),
            "name": [["family": "Example", "given": ["Sam"]]],
            "telecom": [["system": "phone", "value": "01632 960123"]],
        ]
    }

    /// One care plan, encounter and related person per patient at `peer`; returns the care plan tokens.
    @discardableResult
    static func seed(_ cluster: Cluster, peer: String, patients: [NHSNumber], prefix: String) async throws -> [String] {
        var tokens: [String] = []
        for (index, patient) in patients.enumerated() {
            let value = "\(prefix)-\(index)"
            try await cluster.create(peer, carePlan(peer, "CP-" + value, patient: patient))
            try await cluster.create(peer, encounter(peer, "ENC-" + value, patient: patient))
            try await cluster.create(peer, relatedPerson(peer, "RP-" + value, patient: patient))
            tokens.append(carePlanSystem(peer) + "|CP-" + value)
        }
        return tokens
    }
}
