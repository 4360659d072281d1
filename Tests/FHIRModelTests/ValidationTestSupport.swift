import FHIRJSON
import FHIRModel

/// One step into a JSON tree: an object member or an array index.
enum JSONStep: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, Sendable {
    case key(String)
    case index(Int)

    init(stringLiteral value: String) { self = .key(value) }
    init(integerLiteral value: Int) { self = .index(value) }
}

extension JSON {
    /// A copy with the value at `steps` replaced by `value` (`nil` removes it; a missing member is added).
    func setting(_ steps: [JSONStep], to value: JSON?) -> JSON {
        guard let step = steps.first else { return value ?? .null }
        let rest = Array(steps.dropFirst())
        switch (self, step) {
        case (.object(var object), .key(let key)):
            if rest.isEmpty {
                object[key] = value
            } else {
                object[key] = (object[key] ?? .object(JSONObject())).setting(rest, to: value)
            }
            return .object(object)
        case (.array(var items), .index(let index)):
            if rest.isEmpty {
                if let value { if index == items.count { items.append(value) } else { items[index] = value } } else {
                    items.remove(at: index)
                }
            } else {
                items[index] = items[index].setting(rest, to: value)
            }
            return .array(items)
        default:
            preconditionFailure("cannot step \(step) into \(kindName)")
        }
    }

    /// `setting` with variadic steps: `resource.set("activity", 0, "id", to: "x")`.
    func set(_ steps: JSONStep..., to value: JSON?) -> JSON {
        setting(steps, to: value)
    }

    /// Parses a JSON literal written in a test.
    static func literal(_ text: String) -> JSON {
        do {
            return try JSON.parse(text)
        } catch {
            preconditionFailure("test JSON does not parse: \(error)")
        }
    }
}

/// Small synthetic resources that pass the caresync profile; each test changes one thing.
enum SampleResources {
    static let nhsNumber = "9434765919"
    static let otherNHSNumber = "9000000009"

    static var nhsSubject: JSON {
        ["reference": "Patient/p1", "identifier": ["system": "https://fhir.nhs.uk/Id/nhs-number", "value": .string(nhsNumber)]]
    }

    static let carePlan = JSON.literal(
        #"""
        {
          "resourceType": "CarePlan",
          "id": "cp-1",
          "meta": {"versionId": "1", "lastUpdated": "2025-04-01T09:30:00Z"},
          "identifier": [{"system": "https://trust.example.nhs.uk/Id/careplan", "value": "CP-1"}],
          "status": "active",
          "intent": "plan",
          "title": "Heart failure care plan",
          "subject": {"reference": "Patient/p1", "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}},
          "period": {"start": "2025-04-01", "end": "2025-10-01"},
          "created": "2025-03-30T14:00:00+01:00",
          "activity": [
            {
              "id": "act-1",
              "detail": {
                "kind": "ServiceRequest",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "390906007"}]},
                "status": "scheduled",
                "doNotPerform": false,
                "scheduledTiming": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk", "timeOfDay": ["09:00:00"]}},
                "dailyAmount": {"value": 1.50, "unit": "tablet"}
              }
            },
            {"id": "act-2", "detail": {"status": "not-started", "description": "Review in clinic"}}
          ],
          "note": [{"text": "Plan agreed with the patient."}]
        }
        """#)

    static let encounter = JSON.literal(
        #"""
        {
          "resourceType": "Encounter",
          "id": "enc-1",
          "status": "finished",
          "statusHistory": [{"status": "arrived", "period": {"start": "2025-04-01T09:00:00Z", "end": "2025-04-01T09:10:00Z"}}],
          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
          "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}},
          "period": {"start": "2025-04-01T09:00:00Z", "end": "2025-04-01T10:00:00Z"}
        }
        """#)

    static let relatedPerson = JSON.literal(
        #"""
        {
          "resourceType": "RelatedPerson",
          "id": "rp-1",
          "patient": {"reference": "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919"},
          "gender": "female",
          "name": [{"use": "official", "family": "Smith", "given": ["Jane"]}],
          "telecom": [{"system": "phone", "value": "01632960587", "use": "home"}],
          "photo": [{"contentType": "image/png", "data": "aGVsbG8="}]
        }
        """#)

    static let patient = JSON.literal(
        #"""
        {
          "resourceType": "Patient",
          "id": "p1",
          "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}],
          "gender": "male",
          "birthDate": "1970-01-01",
          "deceasedBoolean": false,
          "multipleBirthInteger": 1,
          "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">John</div>"}
        }
        """#)
}
