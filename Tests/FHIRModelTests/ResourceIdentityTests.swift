import FHIRJSON
import FHIRModel
import Testing

@Suite("Resource identity")
struct ResourceIdentityTests {
    @Test("a care plan's identity comes from its id, meta, identifiers and subject")
    func carePlan() throws {
        let resource = try JSON.parse(
            #"""
            {"resourceType":"CarePlan","id":"cp1","meta":{"versionId":"3","lastUpdated":"2025-05-01T10:00:00Z"},
             "identifier":[{"value":"no-system"},{"system":"https://trust.example/careplan","value":"A-1"}],
             "subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}},
             "status":"active","intent":"plan"}
            """#
        )
        let identity = try #require(ResourceIdentity(resource))
        #expect(identity.resourceType == .carePlan)
        #expect(identity.id == "cp1")
        #expect(identity.versionId == "3")
        #expect(identity.lastUpdated == FHIRInstant("2025-05-01T10:00:00Z"))
        #expect(identity.identifiers == [BusinessIdentifier(system: "https://trust.example/careplan", value: "A-1")])
        #expect(identity.globalKey?.description == "CarePlan|https://trust.example/careplan|A-1")
        #expect(identity.nhsNumber?.digits == "9434765919")
    }

    @Test("related persons reference the patient through `patient`, conditional references count")
    func relatedPerson() throws {
        let resource = try JSON.parse(
            #"{"resourceType":"RelatedPerson","patient":{"reference":"Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009"}}"#
        )
        #expect(ResourceIdentity(resource)?.nhsNumber?.digits == "9000000009")
    }

    @Test("an unknown resource type has no identity")
    func unknownType() throws {
        #expect(ResourceIdentity(try JSON.parse(#"{"resourceType":"Observation"}"#)) == nil)
        #expect(ResourceIdentity(try JSON.parse(#"{"id":"x"}"#)) == nil)
    }

    @Test("minted keys name the origin peer and type")
    func minted() {
        let key = GlobalKey.minted(resourceType: .encounter, originODS: "RJ1", localID: "e-77")
        #expect(key.description == "Encounter|urn:caresync:RJ1:Encounter|e-77")
    }
}
