import FHIRJSON
import FHIRModel
import PropertyBased

/// A small deterministic random source (SplitMix64) seeded from the property checker's generator, so a
/// failing case reproduces from the seed the checker prints.
struct Dice {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    mutating func chance(_ percent: Int) -> Bool {
        int(1...100) <= percent
    }

    mutating func pick<T>(_ choices: [T]) -> T {
        choices[int(0...choices.count - 1)]
    }

    mutating func shuffled<T>(_ values: [T]) -> [T] {
        var values = values
        guard values.count > 1 else { return values }
        for index in stride(from: values.count - 1, to: 0, by: -1) {
            values.swapAt(index, int(0...index))
        }
        return values
    }
}

/// Three versions of one record: a base and two concurrent edits of it (`nil` = deleted).
struct Scenario: CustomStringConvertible, Sendable {
    var base: JSON
    var ours: JSON?
    var theirs: JSON?

    var description: String {
        "base: \(base.text())\nours: \(ours?.text() ?? "deleted")\ntheirs: \(theirs?.text() ?? "deleted")"
    }
}

/// Generators of realistic CarePlans, Encounters and RelatedPersons (UK Core shaped, valid NHS numbers)
/// and of the edits two systems make to them concurrently.
enum Synthetic {
    // MARK: Property-checker generators

    /// A base record of any synchronised type and two independent edits of it (deletions in 1 case in 25).
    /// Safety-relevant edits (entered-in-error, another patient) are left out: the laws are about the policy.
    static let scenarios = Generator<Scenario, Shrink.None<Scenario>>(run: { rng in
        var dice = Dice(seed: rng.next())
        let base = resource(&dice)
        let ours = dice.chance(4) ? JSON?.none : edited(base, &dice)
        let theirs = dice.chance(4) ? JSON?.none : edited(base, &dice)
        return Scenario(base: base, ours: ours, theirs: theirs)
    })

    /// A base record and one edit of it.
    static let edits = Generator<Scenario, Shrink.None<Scenario>>(run: { rng in
        var dice = Dice(seed: rng.next())
        let base = resource(&dice)
        return Scenario(base: base, ours: dice.chance(5) ? JSON?.none : edited(base, &dice), theirs: JSON?.none)
    })

    // MARK: Records

    static func resource(_ dice: inout Dice) -> JSON {
        switch dice.int(0...2) {
        case 0: carePlan(&dice)
        case 1: encounter(&dice)
        default: relatedPerson(&dice)
        }
    }

    static let nhsNumberSystem = NHSNumber.system

    /// A random NHS number that passes the Modulus 11 check.
    static func nhsNumber(_ dice: inout Dice) -> String {
        while true {
            let digits = (0..<9).map { _ in dice.int(0...9) }
            guard Set(digits).count > 1, let check = NHSNumber.checkDigit(forFirstNine: digits) else { continue }
            return (digits + [check]).map(String.init).joined()
        }
    }

    static func patientReference(_ dice: inout Dice, nhsNumber: String) -> JSON {
        [
            "reference": .string("Patient/\(dice.int(1000...9999))"),
            "identifier": ["system": .string(nhsNumberSystem), "value": .string(nhsNumber)],
        ]
    }

    static func meta(_ dice: inout Dice, profile: String) -> JSON {
        [
            "versionId": .string(String(dice.int(1...40))),
            "lastUpdated": .string(instant(&dice)),
            "profile": [.string("https://fhir.hl7.org.uk/StructureDefinition/\(profile)")],
        ]
    }

    static func instant(_ dice: inout Dice) -> String {
        "2025-\(pad(dice.int(1...12)))-\(pad(dice.int(1...28)))T\(pad(dice.int(0...23))):\(pad(dice.int(0...59))):\(pad(dice.int(0...59))).\(dice.int(100...999))Z"
    }

    static func date(_ dice: inout Dice, year: Int = 2025) -> String {
        "\(year)-\(pad(dice.int(1...12)))-\(pad(dice.int(1...28)))"
    }

    static func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }

    static func coding(_ system: String, _ code: String, _ display: String) -> JSON {
        ["coding": [["system": .string(system), "code": .string(code), "display": .string(display)]]]
    }

    static let snomed = "http://snomed.info/sct"

    static let activityCodes: [(String, String)] = [
        ("27113001", "Body weight"), ("284093001", "Potassium supplementation"), ("306005", "Echography of kidney"),
        ("229070002", "Stretching exercises"), ("408289007", "Refer to weight management program"),
        ("385763009", "Hospice care"), ("710081004", "Smoking cessation therapy"), ("386053000", "Evaluation procedure"),
        ("370789001", "Development of individualized plan of care"), ("91251008", "Physical therapy procedure"),
    ]

    static let categories: [(String, String)] = [
        ("734163000", "Care plan"), ("736353004", "Inpatient care plan"), ("735985000", "Diabetes self management plan"),
        ("736366004", "Exercise care plan"), ("698360004", "Diabetes clinical management plan"),
    ]

    static let phrases = [
        "Manage obesity and weight loss", "Reduce blood pressure", "Support discharge home", "Improve mobility after stroke",
        "Review medication weekly", "Monitor renal function", "Agreed with patient and carer", "Increase fluid intake",
    ]

    static func annotation(_ dice: inout Dice) -> JSON {
        [
            "authorReference": .string("Practitioner/\(dice.int(1...9))").asReference,
            "time": .string(instant(&dice)),
            "text": .string(dice.pick(phrases) + " (\(dice.int(1...99)))"),
        ]
    }

    static func carePlan(_ dice: inout Dice) -> JSON {
        let nhs = nhsNumber(&dice)
        let codes = dice.shuffled(activityCodes)
        let activityCount = dice.int(1...4)
        var activities: [JSON] = []
        for index in 0..<activityCount {
            activities.append(activity(&dice, code: codes[index], id: dice.chance(60) ? "act-\(index + 1)" : nil))
        }
        var plan: JSON = [
            "resourceType": "CarePlan",
            "id": .string("cp-\(dice.int(1...99999))"),
            "meta": meta(&dice, profile: "UKCore-CarePlan"),
            "identifier": [["system": "https://fhir.example-trust.nhs.uk/Id/care-plan", "value": .string("CP\(dice.int(10000...99999))")]],
            "status": .string(dice.pick(["draft", "active", "on-hold"])),
            "intent": "plan",
            "category": .array(dice.shuffled(categories).prefix(dice.int(1...2)).map { coding(snomed, $0.0, $0.1) }),
            "title": .string(dice.pick(phrases)),
            "description": .string(dice.pick(phrases)),
            "subject": patientReference(&dice, nhsNumber: nhs),
            "period": ["start": .string(date(&dice))],
            "created": .string(date(&dice, year: 2024)),
            "author": .string("Practitioner/\(dice.int(1...9))").asReference,
            "activity": .array(activities),
        ]
        let teams = (0..<dice.int(0...2)).map { JSON.string("CareTeam/team-\($0 + 1)").asReference }
        if !teams.isEmpty { plan["careTeam"] = .array(teams) }
        let goals = (0..<dice.int(0...2)).map { JSON.string("Goal/goal-\($0 + 1)").asReference }
        if !goals.isEmpty { plan["goal"] = .array(goals) }
        let notes = (0..<dice.int(0...2)).map { _ in annotation(&dice) }
        if !notes.isEmpty { plan["note"] = .array(notes) }
        return plan
    }

    static func activity(_ dice: inout Dice, code: (String, String), id: String?) -> JSON {
        var detail: JSON = [
            "kind": .string(dice.pick(["ServiceRequest", "NutritionOrder", "Task"])),
            "code": coding(snomed, code.0, code.1),
            "status": .string(dice.pick(["not-started", "scheduled", "in-progress"])),
            "doNotPerform": false,
            "description": .string(dice.pick(phrases)),
        ]
        if dice.chance(70) {
            detail["scheduledTiming"] = ["repeat": ["frequency": .number(JSONNumber(dice.int(1...3))), "period": 1, "periodUnit": .string(dice.pick(["d", "wk"]))]]
        } else {
            detail["scheduledString"] = .string(dice.pick(["daily", "weekly", "after each meal"]))
        }
        if dice.chance(50) {
            detail["dailyAmount"] = quantity(&dice)
        }
        if dice.chance(50) {
            detail["performer"] = [.string("Practitioner/\(dice.int(1...9))").asReference]
        }
        var activity: JSON = ["detail": detail]
        if let id { activity["id"] = .string(id) }
        if dice.chance(40) { activity["progress"] = [annotation(&dice)] }
        return activity
    }

    static func quantity(_ dice: inout Dice) -> JSON {
        [
            "value": .number(JSONNumber("\(dice.int(1...9)).\(dice.int(0...9))\(dice.int(0...9))")!),
            "unit": "mmol", "system": "http://unitsofmeasure.org", "code": "mmol",
        ]
    }

    static func encounter(_ dice: inout Dice) -> JSON {
        let nhs = nhsNumber(&dice)
        var participants: [JSON] = []
        for index in 0..<dice.int(1...3) {
            participants.append([
                "type": [coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "PPRF", "primary performer")],
                "individual": .string("Practitioner/p\(index + 1)").asReference,
            ])
        }
        var encounter: JSON = [
            "resourceType": "Encounter",
            "id": .string("enc-\(dice.int(1...99999))"),
            "meta": meta(&dice, profile: "UKCore-Encounter"),
            "identifier": [["system": "https://fhir.example-trust.nhs.uk/Id/encounter", "value": .string("E\(dice.int(10000...99999))")]],
            "status": .string(dice.pick(["planned", "arrived", "in-progress"])),
            "class": ["system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": .string(dice.pick(["AMB", "IMP", "HH"]))],
            "type": [coding(snomed, "11429006", "Consultation")],
            "subject": patientReference(&dice, nhsNumber: nhs),
            "participant": .array(participants),
            "period": ["start": .string(instant(&dice))],
            "reasonCode": [coding(snomed, "38341003", "Hypertensive disorder")],
            "serviceProvider": .string("Organization/RX\(dice.int(1...9))").asReference,
        ]
        if dice.chance(50) {
            encounter["statusHistory"] = [["status": "planned", "period": ["start": .string(instant(&dice))]]]
        }
        return encounter
    }

    static func relatedPerson(_ dice: inout Dice) -> JSON {
        let nhs = nhsNumber(&dice)
        var telecom: [JSON] = [["system": "phone", "value": .string("0163296\(dice.int(1000...9999))"), "use": "home"]]
        if dice.chance(50) { telecom.append(["system": "email", "value": .string("carer\(dice.int(1...99))@example.org")]) }
        return [
            "resourceType": "RelatedPerson",
            "id": .string("rp-\(dice.int(1...99999))"),
            "meta": meta(&dice, profile: "UKCore-RelatedPerson"),
            "identifier": [["system": "https://fhir.example-trust.nhs.uk/Id/related-person", "value": .string("RP\(dice.int(10000...99999))")]],
            "active": true,
            "patient": patientReference(&dice, nhsNumber: nhs),
            "relationship": [coding("http://terminology.hl7.org/CodeSystem/v3-RoleCode", dice.pick(["WIFE", "SON", "DAU", "FRND"]), "relative")],
            "name": [["use": "usual", "family": .string(dice.pick(["Smith", "Jones", "Patel", "Khan"])), "given": [.string(dice.pick(["Jane", "Amir", "Lee"]))]]],
            "telecom": .array(telecom),
            "gender": .string(dice.pick(["female", "male", "unknown"])),
            "period": ["start": .string(date(&dice, year: 2023))],
        ]
    }

    // MARK: Edits

    /// `record` with 1 to 4 random edits of the kind a clinician or a system makes, and a new version.
    static func edited(_ record: JSON, _ dice: inout Dice, safetyEdits: Bool = false) -> JSON {
        var copy = record
        for _ in 0..<dice.int(1...4) {
            switch copy["resourceType"]?.stringValue {
            case "CarePlan": editCarePlan(&copy, &dice, safetyEdits: safetyEdits)
            case "Encounter": editEncounter(&copy, &dice, safetyEdits: safetyEdits)
            default: editRelatedPerson(&copy, &dice)
            }
        }
        copy[path: ["meta", "versionId"]] = .string(String(dice.int(41...999)))
        copy[path: ["meta", "lastUpdated"]] = .string(instant(&dice))
        return copy
    }

    static func editCarePlan(_ plan: inout JSON, _ dice: inout Dice, safetyEdits: Bool) {
        switch dice.int(0...15) {
        case 0:
            var statuses = ["draft", "active", "on-hold", "revoked", "completed"]
            if safetyEdits { statuses.append("entered-in-error") }
            plan["status"] = .string(dice.pick(statuses))
        case 1: plan["description"] = .string(dice.pick(phrases))
        case 2: plan["title"] = .string(dice.pick(phrases))
        case 3: plan.append(annotation(&dice), to: "note")
        case 4: plan.removeRandomElement(of: "note", &dice)
        case 5:
            let used = Set((plan["activity"]?.arrayValue ?? []).compactMap { $0[path: ["detail", "code", "coding"]]?.arrayValue?.first?["code"]?.stringValue })
            if let code = activityCodes.first(where: { !used.contains($0.0) }) {
                plan.append(activity(&dice, code: code, id: dice.chance(60) ? "act-\(dice.int(10...99))" : nil), to: "activity")
            }
        case 6:
            if (plan["activity"]?.arrayValue?.count ?? 0) > 1 { plan.removeRandomElement(of: "activity", &dice) }
        case 7:
            var statuses = ["not-started", "scheduled", "in-progress", "on-hold", "completed", "cancelled", "stopped"]
            if safetyEdits { statuses.append("entered-in-error") }
            plan.editRandomElement(of: "activity", &dice) { activity, dice in activity[path: ["detail", "status"]] = .string(dice.pick(statuses)) }
        case 8: plan.editRandomElement(of: "activity", &dice) { activity, dice in activity[path: ["detail", "dailyAmount"]] = quantity(&dice) }
        case 9:
            plan.editRandomElement(of: "activity", &dice) { activity, _ in
                activity[path: ["detail", "doNotPerform"]] = .bool(!(activity[path: ["detail", "doNotPerform"]]?.boolValue ?? false))
            }
        case 10: plan.editRandomElement(of: "activity", &dice) { activity, dice in activity.append(annotation(&dice), to: "progress") }
        case 11:
            if dice.chance(50) {
                let category = dice.pick(categories)
                plan.append(coding(snomed, category.0, category.1), to: "category", unique: true)
            } else {
                plan.removeRandomElement(of: "category", &dice)
            }
        case 12:
            if dice.chance(60) {
                plan.append(JSON.string("CareTeam/team-\(dice.int(1...5))").asReference, to: "careTeam", unique: true)
            } else {
                plan.removeRandomElement(of: "careTeam", &dice)
            }
        case 13: plan[path: ["period", "end"]] = .string(date(&dice, year: 2026))
        case 14: plan.append(["system": "https://fhir.example-ics.nhs.uk/Id/care-plan", "value": .string("ICB\(dice.int(1...99))")], to: "identifier", unique: true)
        default: plan.editRandomElement(of: "activity", &dice) { activity, dice in activity[path: ["detail", "description"]] = .string(dice.pick(phrases)) }
        }
    }

    static func editEncounter(_ encounter: inout JSON, _ dice: inout Dice, safetyEdits: Bool) {
        switch dice.int(0...7) {
        case 0:
            var statuses = ["planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled"]
            if safetyEdits { statuses.append("entered-in-error") }
            encounter["status"] = .string(dice.pick(statuses))
        case 1: encounter[path: ["period", "end"]] = .string(instant(&dice))
        case 2: encounter[path: ["class", "code"]] = .string(dice.pick(["AMB", "IMP", "HH", "EMER"]))
        case 3:
            encounter.append(
                ["individual": .string("Practitioner/p\(dice.int(4...9))").asReference], to: "participant", unique: true)
        case 4:
            if (encounter["participant"]?.arrayValue?.count ?? 0) > 1 { encounter.removeRandomElement(of: "participant", &dice) }
        case 5: encounter.append(["status": .string(dice.pick(["arrived", "in-progress"])), "period": ["start": .string(instant(&dice))]], to: "statusHistory")
        case 6: encounter["serviceProvider"] = .string("Organization/RX\(dice.int(1...9))").asReference
        default: encounter["reasonCode"] = [coding(snomed, dice.pick(["38341003", "44054006"]), "reason")]
        }
    }

    static func editRelatedPerson(_ person: inout JSON, _ dice: inout Dice) {
        switch dice.int(0...6) {
        case 0: person.append(["system": "phone", "value": .string("07700900\(dice.int(100...999))"), "use": "mobile"], to: "telecom", unique: true)
        case 1: person.removeRandomElement(of: "telecom", &dice)
        case 2: person["active"] = .bool(dice.chance(50))
        case 3: person[path: ["period", "end"]] = .string(date(&dice, year: 2026))
        case 4:
            let code = dice.pick(["NOK", "GUARD", "ECON"])
            person.append(coding("http://terminology.hl7.org/CodeSystem/v2-0131", code, code), to: "relationship", unique: true)
        case 5: person["gender"] = .string(dice.pick(["female", "male", "unknown"]))
        default:
            person["name"] = [["use": "usual", "family": .string(dice.pick(["Smith", "Jones", "Patel"])), "given": [.string(dice.pick(["Jane", "Amir", "Lee"]))]]]
        }
    }
}

extension JSON {
    /// `{"reference": self}`.
    var asReference: JSON { ["reference": self] }

    /// The value at a path of object members; setting `nil` removes it, setting creates missing objects.
    subscript(path path: [String]) -> JSON? {
        get {
            var current: JSON? = self
            for key in path { current = current?[key] }
            return current
        }
        set {
            guard let key = path.first else {
                if let newValue { self = newValue }
                return
            }
            if path.count == 1 {
                self[key] = newValue
                return
            }
            var child = self[key] ?? [:]
            child[path: Array(path.dropFirst())] = newValue
            self[key] = child
        }
    }

    /// Appends `element` to the list member `key` (creating it); with `unique`, only when not already there.
    mutating func append(_ element: JSON, to key: String, unique: Bool = false) {
        var elements = self[key]?.arrayValue ?? []
        if unique && elements.contains(element) { return }
        elements.append(element)
        self[key] = .array(elements)
    }

    /// Removes one random element of the list member `key`, dropping the member when it empties.
    mutating func removeRandomElement(of key: String, _ dice: inout Dice) {
        guard var elements = self[key]?.arrayValue, !elements.isEmpty else { return }
        elements.remove(at: dice.int(0...elements.count - 1))
        self[key] = elements.isEmpty ? JSON?.none : .array(elements)
    }

    /// Edits one random element of the list member `key`.
    mutating func editRandomElement(of key: String, _ dice: inout Dice, _ edit: (inout JSON, inout Dice) -> Void) {
        guard var elements = self[key]?.arrayValue, !elements.isEmpty else { return }
        let index = dice.int(0...elements.count - 1)
        edit(&elements[index], &dice)
        self[key] = .array(elements)
    }
}
