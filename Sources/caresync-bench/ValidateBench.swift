import FHIRJSON
import FHIRModel

/// Area `validate`: validations per second of a 2–4 KB CarePlan (caresync profile, from bytes), next to a
/// plain parse of the same bytes measured in the same run. DESIGN §10 sets no target; the figure is
/// informational and `met` only says the validator accepted the document.
enum ValidateBench {
    /// A realistic CarePlan: identifiers, NHS-number subject, category, period, three activities with
    /// timings and quantities, notes, an extension.
    static let carePlan = #"""
        {"resourceType":"CarePlan","id":"cp-4711","meta":{"versionId":"7","lastUpdated":"2025-05-01T10:15:30.123+01:00",
        "profile":["https://fhir.hl7.org.uk/StructureDefinition/UKCore-CarePlan"]},
        "extension":[{"url":"https://example.nhs.uk/StructureDefinition/review-cycle","valueDuration":{"value":3,"unit":"month","system":"http://unitsofmeasure.org","code":"mo"}}],
        "identifier":[{"use":"official","system":"https://trust.example.nhs.uk/Id/careplan","value":"CP-2025-004711"},
        {"system":"urn:caresync:RJ1:CarePlan","value":"cp-4711"}],
        "status":"active","intent":"plan",
        "category":[{"coding":[{"system":"http://snomed.info/sct","code":"734163000","display":"Care plan"}]}],
        "title":"Heart failure community care plan","description":"Shared plan agreed between cardiology and the community heart failure team.",
        "subject":{"reference":"Patient/p-1","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"},"display":"Patient"},
        "encounter":{"reference":"Encounter/enc-55"},
        "period":{"start":"2025-04-01","end":"2025-10-01"},"created":"2025-03-30T14:00:00+01:00",
        "author":{"reference":"Practitioner/pr-1","display":"Dr A Example"},
        "careTeam":[{"reference":"CareTeam/ct-hf"}],"addresses":[{"reference":"Condition/hf-1"}],
        "goal":[{"reference":"Goal/g-weight"},{"reference":"Goal/g-bp"}],
        "activity":[
        {"id":"act-1","detail":{"kind":"ServiceRequest","code":{"coding":[{"system":"http://snomed.info/sct","code":"390906007","display":"Follow-up encounter"}]},
        "status":"scheduled","doNotPerform":false,"scheduledTiming":{"repeat":{"boundsPeriod":{"start":"2025-04-01","end":"2025-10-01"},"frequency":1,"period":2,"periodUnit":"wk","dayOfWeek":["tue"],"timeOfDay":["10:30:00"]}},
        "location":{"reference":"Location/clinic-3"},"performer":[{"reference":"Practitioner/pr-2"}],"description":"Fortnightly nurse review"}},
        {"id":"act-2","detail":{"kind":"MedicationRequest","code":{"text":"Furosemide"},"status":"in-progress",
        "productCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"387475002","display":"Furosemide"}]},
        "dailyAmount":{"value":40,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"},
        "quantity":{"value":56,"unit":"tablet"},"scheduledString":"Every morning"}},
        {"id":"act-3","outcomeCodeableConcept":[{"text":"Weight stable"}],"progress":[{"time":"2025-04-15T09:00:00Z","text":"Weight 82.4 kg, stable."}],
        "detail":{"kind":"Task","status":"completed","statusReason":{"text":"Done at first visit"},"scheduledPeriod":{"start":"2025-04-15T09:00:00Z","end":"2025-04-15T09:30:00Z"},"description":"Teach daily weighing"}}],
        "note":[{"authorReference":{"reference":"Practitioner/pr-1"},"time":"2025-03-30T14:05:00+01:00","text":"Plan agreed with the patient and carer."},
        {"authorString":"Community HF nurse","text":"Carer to phone if weight rises by 2 kg in 3 days."}]}
        """#

    static func run() {
        let bytes = Array(carePlan.utf8)
        let validator = ResourceValidator(profile: .caresync, requiresServerMetadata: true)
        let report = validator.validate(bytes: bytes, expectedType: .carePlan, expectedID: "cp-4711")
        precondition(report.isValid, "the benchmark CarePlan must be valid: \(report.issues)")

        let tree = try! JSON.parse(bytes)
        let rates = BenchTiming.interleavedRates([
            { _ = try? JSON.parse(bytes) },
            { _ = validator.validate(bytes: bytes, expectedType: .carePlan, expectedID: "cp-4711") },
            { _ = validator.validate(tree, expectedType: .carePlan, expectedID: "cp-4711") },
        ])
        BenchResult(
            area: "validate", scenario: "careplan \(bytes.count) B validate from bytes (caresync profile)", unit: "ops/s",
            value: rates[1], baselineName: "JSON parse of the same bytes", baseline: rates[0],
            target: "informational (no DESIGN §10 target)", met: report.isValid
        ).emit()
        BenchResult(
            area: "validate", scenario: "careplan \(bytes.count) B validate a parsed tree (caresync profile)", unit: "ops/s",
            value: rates[2], baselineName: "JSON parse of the same bytes", baseline: rates[0],
            target: "informational (no DESIGN §10 target)", met: report.isValid
        ).emit()
    }
}

/// Timing helper for the `validate` area: best-of-rounds throughput.
enum BenchTiming {
    /// Operations per second of each operation: the best of seven rounds of about 0.2 s each, the
    /// operations taking turns round by round so that load from other processes falls on all of them.
    static func interleavedRates(_ operations: [() -> Void]) -> [Double] {
        let clock = ContinuousClock()
        for operation in operations {
            for _ in 0..<200 { operation() }
        }
        var best = Array(repeating: 0.0, count: operations.count)
        for _ in 0..<7 {
            for (index, operation) in operations.enumerated() {
                var count = 0
                let start = clock.now
                var elapsed = Duration.zero
                while elapsed < .milliseconds(200) {
                    for _ in 0..<50 { operation() }
                    count += 50
                    elapsed = clock.now - start
                }
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                best[index] = max(best[index], Double(count) / seconds)
            }
        }
        return best
    }
}
