import FHIRJSON
import FHIRModel

/// Synthetic patients and records for the sandbox: NHS numbers from the test range 999 000 0000 –
/// 999 999 9999 (never issued to people), invented names, UK Core-shaped care plans, care contacts and
/// related persons that pass caresync's validation.
enum SyntheticRecords {
    /// `count` valid NHS numbers from the test range, starting after `offset`.
    static func nhsNumbers(count: Int, offset: Int = 0) -> [NHSNumber] {
        NHSNumber.testRange(count: count, from: 999_000_000 + offset)
    }

    static func subject(_ patient: NHSNumber) -> JSON {
        ["reference": .string("Patient/\(patient.digits)"), "identifier": ["system": .string(NHSNumber.system), "value": .string(patient.digits)]]
    }

    static let snomed = "http://snomed.info/sct"

    /// A care plan with two activities (one with a daily amount), a category and a note.
    static func carePlan(system: String, value: String, patient: NHSNumber, title: String) -> JSON {
        [
            "resourceType": "CarePlan",
            "identifier": [["system": .string(system), "value": .string(value)]],
            "status": "active",
            "intent": "plan",
            "category": [["coding": [["system": .string(snomed), "code": "736353004", "display": "Inpatient care plan"]]]],
            "title": .string(title),
            "description": "Pulmonary rehabilitation and home oxygen review after discharge.",
            "subject": subject(patient),
            "period": ["start": "2025-04-01"],
            "activity": [
                [
                    "id": "act-1",
                    "detail": [
                        "kind": "MedicationRequest",
                        "code": ["coding": [["system": .string(snomed), "code": "387525002", "display": "Potassium chloride"]]],
                        "status": "in-progress",
                        "doNotPerform": false,
                        "dailyAmount": ["value": 80, "unit": "mmol", "system": "http://unitsofmeasure.org", "code": "mmol"],
                    ],
                ],
                [
                    "id": "act-2",
                    "detail": [
                        "kind": "ServiceRequest",
                        "code": ["coding": [["system": .string(snomed), "code": "304549008", "display": "Respiratory therapy"]]],
                        "status": "scheduled",
                        "description": "Supervised exercise and breathing technique review.",
                    ],
                ],
            ],
            "note": [["text": "Prefers morning appointments."]],
        ]
    }

    /// A planned home visit.
    static func encounter(system: String, value: String, patient: NHSNumber) -> JSON {
        [
            "resourceType": "Encounter",
            "identifier": [["system": .string(system), "value": .string(value)]],
            "status": "planned",
            "class": ["system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH", "display": "home health"],
            "subject": subject(patient),
            "period": ["start": "2025-05-01T09:00:00Z"],
        ]
    }

    /// A next of kin with a phone number.
    static func relatedPerson(system: String, value: String, patient: NHSNumber, given: String) -> JSON {
        [
            "resourceType": "RelatedPerson",
            "identifier": [["system": .string(system), "value": .string(value)]],
            "active": true,
            "patient": subject(patient),
            "relationship": [["coding": [["system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "NOK", "display": "next of kin"]]]],
            "name": [["family": "Example", "given": [.string(given)]]],
            "telecom": [["system": "phone", "value": "01632 960123", "use": "home"]],
        ]
    }
}
