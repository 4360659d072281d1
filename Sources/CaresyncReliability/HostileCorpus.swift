import Foundation
import FHIRJSON
import FHIRModel

/// One hostile input and the error caresync documents for it (docs/reliability.md, docs/validation.md,
/// docs/sync-engine.md).
struct HostileCase: Sendable {
    /// How the input reaches caresync.
    enum Delivery: Sendable {
        /// Created in the provider store that runs `--validation minimal` (the record a provider system
        /// might really hold).
        case store(JSON)
        /// Served as these exact bytes inside an otherwise valid searchset by the hostile peer's `records`
        /// path (for what no FHIR server would store: bytes that are not UTF-8, duplicate keys, missing
        /// server metadata). `id` is the id caresync lists it under; `requests` limits which searches
        /// include it.
        case served(bytes: [UInt8], id: String, requests: ClosedRange<Int>? = nil)
        /// A hostile peer of its own whose answer to a search is broken in this way (hostile_peer.py mode).
        case page(mode: String)
        /// A read-write hostile peer that answers pushes in this broken way (hostile_peer.py mode).
        case push(mode: String)
    }

    /// Where the documented error shows.
    enum Report: Sendable {
        /// The pulled version is quarantined; the reason carries `[code]` (a validator code).
        case quarantined(code: String)
        /// The peer's state and last error name the FHIR client's error code.
        case peerError(code: String)
        /// The push stays queued for retry; its last error names the FHIR client's error code.
        case pushRetried(code: String)
        /// An audit entry with this action names the peer.
        case audited(action: String)
    }

    var name: String
    var delivery: Delivery
    var expected: Report
}

/// The corpus: DESIGN §9's bad inputs plus oversized bodies, deep nesting, invalid UTF-8, a `next` link to
/// another host, truncated answers, wrong content types, malformed ETags and Locations, version
/// regression, duplicate list keys, two NHS numbers and more.
enum HostileCorpus {
    /// A valid care plan of its own patient; every store case starts from one and breaks one thing.
    static func carePlan(_ value: String) -> JSON {
        SyntheticRecords.carePlan(
            system: "https://hostile.example.nhs.uk/Id/care-plan", value: value, patient: SyntheticRecords.patients(1, offset: 70_000)[0].digits)
    }

    static func encounter(_ value: String) -> JSON {
        SyntheticRecords.encounter(
            system: "https://hostile.example.nhs.uk/Id/encounter", value: value, patient: SyntheticRecords.patients(1, offset: 70_000)[0].digits)
    }

    static func relatedPerson(_ value: String) -> JSON {
        SyntheticRecords.relatedPerson(
            system: "https://hostile.example.nhs.uk/Id/related-person", value: value,
            patient: SyntheticRecords.patients(1, offset: 70_000)[0].digits)
    }

    static func broken(_ base: JSON, _ change: (inout JSON) -> Void) -> JSON {
        var copy = base
        change(&copy)
        return copy
    }

    static func nhsIdentifier(_ value: String, system: String = NHSNumber.system) -> JSON {
        ["reference": "Patient/p1", "identifier": ["system": .string(system), "value": .string(value)]]
    }

    static func quarantined(_ name: String, _ code: String, _ resource: JSON) -> HostileCase {
        HostileCase(name: name, delivery: .store(resource), expected: .quarantined(code: code))
    }

    /// Everything seeded through the minimal-validation store.
    static var storeCases: [HostileCase] {
        var cases: [HostileCase] = [
            quarantined("careplan-status-missing", "required-missing", broken(carePlan("H-01")) { $0["status"] = nil }),
            quarantined("careplan-intent-missing", "required-missing", broken(carePlan("H-02")) { $0["intent"] = nil }),
            quarantined("careplan-subject-missing", "required-missing", broken(carePlan("H-03")) { $0["subject"] = nil }),
            quarantined("careplan-status-outside-value-set", "code-not-in-value-set", broken(carePlan("H-04")) { $0["status"] = "actve" }),
            quarantined("careplan-intent-outside-value-set", "code-not-in-value-set", broken(carePlan("H-05")) { $0["intent"] = "maybe" }),
            quarantined(
                "activity-detail-status-missing", "required-missing",
                broken(carePlan("H-06")) { $0["activity"] = [["id": "act-1", "detail": ["kind": "Task"]]] }),
            quarantined(
                "activity-detail-status-outside-value-set", "code-not-in-value-set",
                broken(carePlan("H-07")) { $0["activity"] = [["id": "act-1", "detail": ["kind": "Task", "status": "underway"]]] }),
            quarantined("encounter-status-missing", "required-missing", broken(encounter("H-08")) { $0["status"] = nil }),
            quarantined("encounter-class-missing", "required-missing", broken(encounter("H-09")) { $0["class"] = nil }),
            quarantined("encounter-status-outside-value-set", "code-not-in-value-set", broken(encounter("H-10")) { $0["status"] = "done" }),
            quarantined(
                "encounter-class-outside-value-set", "code-not-in-value-set",
                broken(encounter("H-11")) { $0["class"] = ["system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ZZZ"] }),
            quarantined("encounter-subject-missing", "required-missing", broken(encounter("H-12")) { $0["subject"] = nil }),
            quarantined("relatedperson-patient-missing", "required-missing", broken(relatedPerson("H-13")) { $0["patient"] = nil }),
            quarantined("relatedperson-gender-outside-value-set", "code-not-in-value-set", broken(relatedPerson("H-14")) { $0["gender"] = "unknownish" }),
            quarantined("nhs-number-nine-digits", "nhs-number-length", broken(carePlan("H-15")) { $0["subject"] = nhsIdentifier("943476591") }),
            quarantined("nhs-number-eleven-digits", "nhs-number-length", broken(carePlan("H-16")) { $0["subject"] = nhsIdentifier("94347659190") }),
            quarantined("nhs-number-with-spaces", "nhs-number-spaces", broken(carePlan("H-17")) { $0["subject"] = nhsIdentifier("943 476 5919") }),
            quarantined("nhs-number-bad-check-digit", "nhs-number-check-digit", broken(carePlan("H-18")) { $0["subject"] = nhsIdentifier("9434765918") }),
            quarantined("nhs-number-all-same-digits", "nhs-number-same-digits", broken(carePlan("H-19")) { $0["subject"] = nhsIdentifier("4444444444") }),
            quarantined("nhs-number-letters", "nhs-number-not-digits", broken(carePlan("H-20")) { $0["subject"] = nhsIdentifier("94347659AB") }),
            quarantined(
                "nhs-number-wrong-system", "nhs-number-system",
                broken(carePlan("H-21")) { $0["subject"] = nhsIdentifier("9434765919", system: "http://fhir.nhs.uk/Id/nhs-number") }),
            quarantined(
                "nhs-number-missing", "nhs-number-missing",
                broken(carePlan("H-22")) { $0["subject"] = nhsIdentifier("MRN-0042", system: "https://trust.example.nhs.uk/Id/mrn") }),
            quarantined(
                "two-nhs-numbers", "nhs-number-conflict",
                broken(carePlan("H-23")) {
                    $0["subject"] = [
                        "reference": "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919",
                        "identifier": ["system": .string(NHSNumber.system), "value": "9000000009"],
                    ]
                }),
            quarantined(
                "subject-is-a-group", "subject-not-patient",
                broken(carePlan("H-24")) {
                    $0["subject"] = ["reference": "Group/ward-7", "identifier": ["system": .string(NHSNumber.system), "value": "9434765919"]]
                }),
            quarantined(
                "period-ends-before-start", "period-end-before-start",
                broken(carePlan("H-25")) { $0["period"] = ["start": "2025-05-01", "end": "2025-04-01"] }),
            quarantined("unknown-element", "unknown-element", broken(carePlan("H-26")) { $0["priority"] = "urgent" }),
            quarantined(
                "modifier-extension", "modifier-extension",
                broken(carePlan("H-27")) { $0["modifierExtension"] = [["url": "https://example.org/negated", "valueBoolean": true]] }),
            quarantined(
                "duplicate-activity-ids", "duplicate-element-id",
                broken(carePlan("H-28")) {
                    let activity: JSON = ["id": "act-1", "detail": ["kind": "Task", "status": "scheduled"]]
                    $0["activity"] = [activity, activity]
                }),
            quarantined(
                "duplicate-identifiers", "duplicate-identifier",
                broken(carePlan("H-29")) {
                    let identifier: JSON = ["system": "https://hostile.example.nhs.uk/Id/care-plan", "value": "H-29"]
                    $0["identifier"] = [identifier, identifier]
                }),
            quarantined("identifier-without-system", "identifier-incomplete", broken(carePlan("H-30")) { $0["identifier"] = [["value": "H-30"]] }),
            quarantined(
                "identifier-system-not-a-uri", "identifier-system-invalid",
                broken(carePlan("H-31")) { $0["identifier"] = [["system": "careplans", "value": "H-31"]] }),
            quarantined(
                "identifier-not-a-list", "wrong-json-type",
                broken(carePlan("H-32")) { $0["identifier"] = ["system": "https://hostile.example.nhs.uk/Id/care-plan", "value": "H-32"] }),
            quarantined("status-a-number", "wrong-json-type", broken(carePlan("H-33")) { $0["status"] = 1 }),
            quarantined("empty-category", "empty-value", broken(carePlan("H-34")) { $0["category"] = [] }),
            quarantined("null-title", "null-value", broken(carePlan("H-35")) { $0["title"] = .null }),
            quarantined(
                "two-scheduled-values", "choice-multiple",
                broken(carePlan("H-36")) {
                    $0["activity"] = [
                        ["id": "act-1", "detail": ["kind": "Task", "status": "scheduled", "scheduledString": "weekly", "scheduledPeriod": ["start": "2025-04-01"]]]
                    ]
                }),
            quarantined("created-not-a-date", "invalid-value", broken(carePlan("H-37")) { $0["created"] = "2025-13-45" }),
            quarantined("control-character-in-title", "invalid-value", broken(carePlan("H-38")) { $0["title"] = "Care\u{1}plan" }),
            quarantined(
                "contained-contains", "invariant-failed",
                broken(carePlan("H-39")) {
                    $0["contained"] = [
                        ["resourceType": "Patient", "id": "pt", "contained": [["resourceType": "Patient", "id": "inner"]]]
                    ]
                }),
            quarantined(
                "contained-without-id", "contained-invalid",
                broken(carePlan("H-40")) { $0["contained"] = [["resourceType": "Basic", "code": ["text": "x"]]] }),
            quarantined(
                "primitive-extension-without-element", "primitive-extension-invalid",
                broken(carePlan("H-41")) { $0["_priority"] = ["extension": [["url": "https://example.org/x", "valueString": "y"]]] }),
        ]
        // Over the 2 MiB limit: five notes of 450 KiB each (each string is under the 1 MB string limit).
        let longText = String(repeating: "Long narrative copied from a scanned letter. ", count: 10_240)
        cases.append(
            quarantined(
                "oversized-resource", "too-large",
                broken(carePlan("H-42")) { $0["note"] = .array((0..<5).map { _ in ["text": .string(longText)] }) }))
        return cases
    }

    /// A served care plan's bytes: a valid plan with server metadata, `id` and `text` substituted.
    static func servedPlan(id: String, value: String, version: String = "1", lastUpdated: String = "2025-04-01T09:30:00.000Z", patientOffset: Int = 71_000)
        -> String
    {
        let patient = SyntheticRecords.patients(1, offset: patientOffset)[0].digits
        return #"{"resourceType":"CarePlan","id":"\#(id)","meta":{"versionId":"\#(version)","lastUpdated":"\#(lastUpdated)"},"identifier":[{"system":"https://served.example.nhs.uk/Id/care-plan","value":"\#(value)"}],"status":"active","intent":"plan","title":"Served plan","subject":{"reference":"Patient/\#(patient)","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"\#(patient)"}}}"#
    }

    static func served(_ name: String, _ code: String, id: String, _ text: String) -> HostileCase {
        HostileCase(name: name, delivery: .served(bytes: Array(text.utf8), id: id), expected: .quarantined(code: code))
    }

    /// What only a broken server would send, served inside a valid page.
    static var servedCases: [HostileCase] {
        var invalidUTF8 = Array(servedPlan(id: "s-utf8", value: "S-01").utf8)
        let title = Array("Served plan".utf8)
        if let start = invalidUTF8.firstRange(of: title)?.lowerBound {
            invalidUTF8.replaceSubrange(start..<(start + 6), with: [0x53, 0x65, 0xC3, 0x28, 0xFF, 0x64])  // "Se" + broken sequences
        }
        var nested = "\"deep\""
        for _ in 0..<80 { nested = "{\"extension\":[{\"url\":\"https://example.org/n\",\"valueString\":\"x\"}],\"x\":\(nested)}" }
        let deep = servedPlan(id: "s-deep", value: "S-03").replacingOccurrences(of: #""title":"Served plan""#, with: #""title":"Served plan","text":\#(nested)"#)
        return [
            HostileCase(name: "invalid-utf8", delivery: .served(bytes: invalidUTF8, id: "s-utf8"), expected: .quarantined(code: "invalid-utf8")),
            served(
                "duplicate-key", "duplicate-key", id: "s-dupkey",
                servedPlan(id: "s-dupkey", value: "S-02").replacingOccurrences(of: #""status":"active""#, with: #""status":"active","status":"revoked""#)),
            served("nested-too-deep", "too-deep", id: "s-deep", deep),
            served(
                "resource-type-missing", "resource-type-missing", id: "s-notype",
                servedPlan(id: "s-notype", value: "S-04").replacingOccurrences(of: #""resourceType":"CarePlan","#, with: "")),
            served(
                "resource-type-mismatch", "resource-type-mismatch", id: "s-enc",
                servedPlan(id: "s-enc", value: "S-05").replacingOccurrences(of: #""resourceType":"CarePlan""#, with: #""resourceType":"Encounter""#)),
            served("id-invalid", "id-invalid", id: "bad id!", servedPlan(id: "bad id!", value: "S-06")),
            served(
                "version-id-missing", "version-id-missing", id: "s-nover",
                servedPlan(id: "s-nover", value: "S-07").replacingOccurrences(of: #""versionId":"1","#, with: "")),
            served("last-updated-not-an-instant", "invalid-value", id: "s-date", servedPlan(id: "s-date", value: "S-08", lastUpdated: "2025-04-01")),
            served(
                "last-updated-missing", "last-updated-missing", id: "s-nodate",
                servedPlan(id: "s-nodate", value: "S-09").replacingOccurrences(of: #","lastUpdated":"2025-04-01T09:30:00.000Z""#, with: "")),
            served(
                "contained-not-an-object", "contained-invalid", id: "s-array",
                #"{"resourceType":"CarePlan","id":"s-array","meta":{"versionId":"1","lastUpdated":"2025-04-01T09:30:00.000Z"},"contained":[[]],"status":"active","intent":"plan"}"#),
            // Version regression: version 5 first, then version 3 of the same record with other content.
            HostileCase(
                name: "version-regression",
                delivery: .served(
                    bytes: Array(servedPlan(id: "s-regress", value: "S-11", version: "5", lastUpdated: "2025-04-02T09:30:00.000Z").utf8), id: "s-regress",
                    requests: 1...3),
                expected: .audited(action: "peer-version-regressed")),
        ]
    }

    /// The regressed version of `version-regression` (served from the fourth search on).
    static var regressedVersion: [UInt8] {
        Array(
            servedPlan(id: "s-regress", value: "S-11", version: "3", lastUpdated: "2025-04-03T09:30:00.000Z")
                .replacingOccurrences(of: #""title":"Served plan""#, with: #""title":"Served plan, older copy""#).utf8)
    }

    /// Good records served beside the bad ones (they must reach the hub).
    static let servedGood = (1...3).map { servedPlan(id: "s-good-\($0)", value: "S-GOOD-\($0)", patientOffset: 72_000 + $0) }

    /// Broken answers, each from a peer of its own.
    static let pageCases: [HostileCase] = [
        HostileCase(name: "page-not-json", delivery: .page(mode: "not-json"), expected: .peerError(code: "malformed-response")),
        HostileCase(name: "page-wrong-content-type", delivery: .page(mode: "wrong-content-type"), expected: .peerError(code: "malformed-response")),
        HostileCase(name: "page-truncated", delivery: .page(mode: "truncated"), expected: .peerError(code: "transport")),
        HostileCase(name: "next-link-to-another-host", delivery: .page(mode: "foreign-next"), expected: .peerError(code: "foreign-next-link")),
        HostileCase(name: "page-without-server-time", delivery: .page(mode: "no-server-time"), expected: .peerError(code: "malformed-response")),
        HostileCase(name: "history-bundle-for-a-search", delivery: .page(mode: "history-bundle"), expected: .peerError(code: "malformed-response")),
        HostileCase(name: "operation-outcome-with-200", delivery: .page(mode: "not-a-bundle"), expected: .peerError(code: "malformed-response")),
        HostileCase(name: "empty-200-body", delivery: .page(mode: "empty-body"), expected: .peerError(code: "malformed-response")),
        HostileCase(name: "html-500-forever", delivery: .page(mode: "server-error"), expected: .peerError(code: "http-status")),
        HostileCase(name: "page-over-64-mib", delivery: .page(mode: "oversized"), expected: .peerError(code: "transport")),
        HostileCase(name: "fhir-r5-peer", delivery: .page(mode: "r5"), expected: .audited(action: "peer-refused")),
        HostileCase(name: "push-answer-malformed-etag", delivery: .push(mode: "push-malformed-etag"), expected: .pushRetried(code: "malformed-response")),
        HostileCase(name: "push-answer-malformed-location", delivery: .push(mode: "push-malformed-location"), expected: .pushRetried(code: "malformed-response")),
        HostileCase(name: "push-answer-truncated", delivery: .push(mode: "push-truncated"), expected: .pushRetried(code: "transport")),
    ]

    /// The record a push peer holds: valid, without a business identifier, so caresync mints one and
    /// pushes the record back with it.
    static func pushPeerRecord(id: String, patientOffset: Int) -> [UInt8] {
        let patient = SyntheticRecords.patients(1, offset: patientOffset)[0].digits
        return Array(
            #"{"resourceType":"CarePlan","id":"\#(id)","meta":{"versionId":"1","lastUpdated":"2025-04-01T09:30:00.000Z"},"status":"active","intent":"plan","title":"Plan without identifier","subject":{"reference":"Patient/\#(patient)","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"\#(patient)"}}}"#
                .utf8)
    }

    /// A good record on the page whose next link points elsewhere: the whole answer is refused, so it must
    /// not reach the hub (nothing from an answer caresync refused is used).
    static let foreignNextGood = servedPlan(id: "f-good", value: "F-GOOD", patientOffset: 73_000)

    /// A record without `meta.lastUpdated`, on the page without a server time: nothing gives a time for
    /// the cursor, so the page is refused.
    static let undatedPlan = servedPlan(id: "n-undated", value: "N-UNDATED", patientOffset: 73_100)
        .replacingOccurrences(of: #","lastUpdated":"2025-04-01T09:30:00.000Z""#, with: "")

    static var all: [HostileCase] { storeCases + servedCases + pageCases }
}
