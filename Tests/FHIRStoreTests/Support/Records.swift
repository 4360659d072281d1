import FHIRJSON
import FHIRModel

/// Synthetic records for the store's tests (valid FHIR R4, NHS numbers that pass Modulus 11).
enum Records {
    static let nhsSystem = NHSNumber.system
    static let carePlanSystem = "https://trust.example.nhs.uk/Id/care-plan"

    /// The `n`th valid NHS number of a deterministic series (skipping check digit 10).
    static func nhsNumber(_ n: Int) -> String {
        var candidate = 943_476_500 + n
        while true {
            let digits = String(candidate).compactMap(\.wholeNumberValue)
            if let check = NHSNumber.checkDigit(forFirstNine: digits) { return String(candidate) + String(check) }
            candidate += 1_000_000
        }
    }

    static func carePlan(identifier: String, nhsNumber: String = nhsNumber(0), patientID: String? = nil, status: String = "active", id: String? = nil) -> String {
        var subject: JSON = ["identifier": ["system": .string(nhsSystem), "value": .string(nhsNumber)]]
        if let patientID { subject["reference"] = .string("Patient/\(patientID)") }
        var resource: JSON = [
            "resourceType": "CarePlan",
            "identifier": [["system": .string(carePlanSystem), "value": .string(identifier)]],
            "status": .string(status),
            "intent": "plan",
            "title": "Community respiratory care plan",
            "subject": subject,
            "period": ["start": "2025-04-01"],
        ]
        if let id { resource["id"] = .string(id) }
        return resource.text()
    }

    static func patient(nhsNumber: String, id: String? = nil) -> String {
        var resource: JSON = [
            "resourceType": "Patient",
            "identifier": [["system": .string(nhsSystem), "value": .string(nhsNumber)]],
            "name": [["family": "Example", "given": ["Alex"]]],
        ]
        if let id { resource["id"] = .string(id) }
        return resource.text()
    }

    static func relatedPerson(nhsNumber: String, patientID: String) -> String {
        let resource: JSON = [
            "resourceType": "RelatedPerson",
            "patient": ["reference": .string("Patient/\(patientID)"), "identifier": ["system": .string(nhsSystem), "value": .string(nhsNumber)]],
            "relationship": [["coding": [["system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "WIFE"]]]],
        ]
        return resource.text()
    }

    /// A transaction Bundle creating `count` care plans with identifiers `prefix-0`, `prefix-1`, ….
    static func carePlanTransaction(prefix: String, count: Int, nhsNumber: String = nhsNumber(0)) throws -> String {
        var entries: [JSON] = []
        for index in 0..<count {
            entries.append([
                "resource": try JSON.parse(carePlan(identifier: "\(prefix)-\(index)", nhsNumber: nhsNumber)),
                "request": ["method": "POST", "url": "CarePlan"],
            ])
        }
        let bundle: JSON = ["resourceType": "Bundle", "type": "transaction", "entry": .array(entries)]
        return bundle.text()
    }
}
