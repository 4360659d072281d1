import FHIRJSON
import MergeCore
import Testing

/// Each strategy and each safety rule on the published examples in `../shared/fixtures/fhir`: the fixture
/// is the base; ours and theirs are edits of it made here.
@Suite("Merge table: the strategies and safety rules on real examples")
struct MergeTableTests {
    static let renal = "CarePlan/hl7-careplan-example-f201-renal.json"
    static let general = "CarePlan/hl7-careplan-example.json"
    static let integrated = "CarePlan/hl7-careplan-example-integrated.json"
    static let wellness = "CarePlan/ukcore-CarePlan-WellnessPlan.json"
    static let inpatient = "Encounter/hl7-encounter-example-f203-20130311.json"
    static let emergency = "Encounter/hl7-encounter-example-emerg.json"
    static let relatedPerson = "RelatedPerson/pds-RelatedPersonBundle-RelatedPerson-507B7621.json"

    /// The renal plan's two activities as merge paths: code + schedule, and code alone.
    static let potassium = "CarePlan.activity[http://snomed.info/sct|284093001|daily]"
    static let echography = "CarePlan.activity[http://snomed.info/sct|306005]"

    func run(_ base: JSON?, _ ours: JSON?, _ theirs: JSON?, origin: MergeSide? = nil) -> MergeOutcome {
        merge(base: base, ours: ours, theirs: theirs, policy: .default, context: MergeContext(origin: origin))
    }

    func decision(_ outcome: MergeOutcome, _ path: String) -> MergeDecision? {
        outcome.decisions.first { $0.path == path }
    }

    func conflict(_ outcome: MergeOutcome, _ path: String) -> MergeConflict? {
        outcome.conflicts.first { $0.path == path }
    }

    // MARK: three-way

    @Test("three-way: a change on one side is taken and names the default rule")
    func threeWayOneSided() throws {
        guard let base = try Fixtures.load(Self.renal) else { return }
        var theirs = base
        theirs["description"] = "Renal plan reviewed by the ward team"
        let outcome = run(base, base, theirs)
        #expect(outcome.status == .merged)
        #expect(outcome.result?["description"] == "Renal plan reviewed by the ward team")
        let taken = try #require(decision(outcome, "CarePlan.description"))
        #expect(taken.rule == "default-three-way")
        #expect(taken.took == .theirs)
        #expect(outcome.decisions.count == 1, "unchanged paths are not listed")
    }

    @Test("three-way: different changes to one element conflict, keep ours, and the rest still merges")
    func threeWayConflictKeepsOurs() throws {
        guard let base = try Fixtures.load(Self.renal) else { return }
        var ours = base
        ours["intent"] = "plan"
        ours["description"] = "Hub description"
        var theirs = base
        theirs["intent"] = "order"
        theirs["title"] = "Provider title"
        let outcome = run(base, ours, theirs)
        #expect(outcome.status == .conflict)
        let held = try #require(conflict(outcome, "CarePlan.intent"))
        #expect(held.rule == "default-three-way")
        #expect((held.base, held.ours, held.theirs) == ("proposal", "plan", "order"))
        #expect(!held.hazard.isEmpty)
        #expect(outcome.result?["intent"] == "plan")
        #expect(outcome.result?["description"] == "Hub description")
        #expect(outcome.result?["title"] == "Provider title")
        #expect(outcome.conflicts.count == 1)
    }

    @Test("three-way: objects merge member by member; an atomic rule compares the element as one value")
    func threeWayObjectsAndAtomic() throws {
        guard let base = try Fixtures.load(Self.general) else { return }
        var ours = base
        ours["author"]?["display"] = "Dr Hub"
        ours["period"]?["start"] = "2011-06-02"
        var theirs = base
        theirs["author"]?["reference"] = "Practitioner/provider-1"
        theirs["period"]?["end"] = "2011-07-01"
        let outcome = run(base, ours, theirs)
        #expect(outcome.result?["author"] == ["reference": "Practitioner/provider-1", "display": "Dr Hub"])
        #expect(decision(outcome, "CarePlan.author.display")?.took == .ours)
        #expect(decision(outcome, "CarePlan.author.reference")?.took == .theirs)
        let period = try #require(conflict(outcome, "CarePlan.period"))
        #expect(period.rule == "careplan-period")
        #expect(outcome.result?["period"] == ours["period"])
    }

    @Test("three-way: the same change on both sides is taken once; equal values in another order are no change")
    func sameChangeAndCanonicalEquality() throws {
        guard let base = try Fixtures.load(Self.renal) else { return }
        var both = base
        both["description"] = "Agreed description"
        let same = run(base, both, both)
        #expect(same.status == .merged)
        #expect(decision(same, "CarePlan.description")?.took == .both)

        let reordered = Laws.reversedMembers(base)
        let unchanged = run(base, base, reordered)
        #expect(unchanged.status == .merged)
        #expect(unchanged.decisions.isEmpty)
        #expect(unchanged.result == base)
    }

    // MARK: keyed-list

    @Test("keyed-list: activities matched by code and schedule; edits to different activities and additions all merge")
    func keyedListActivities() throws {
        guard let base = try Fixtures.load(Self.renal) else { return }
        var ours = base
        ours[steps: ["activity", 0, "progress"]] = [["text": "Potassium level 4.1 mmol/L on day 2"]]
        var theirs = base
        theirs[steps: ["activity", 1, "detail", "description"]] = "Ultrasound of both kidneys"
        let added: JSON = [
            "detail": [
                "code": ["coding": [["system": "http://snomed.info/sct", "code": "91251008", "display": "Physical therapy procedure"]]],
                "status": "not-started",
            ]
        ]
        theirs.append(added, to: "activity")
        let outcome = run(base, ours, theirs)
        #expect(outcome.status == .merged, "\(outcome.conflicts)")
        let activities = try #require(outcome.result?["activity"]?.arrayValue)
        #expect(activities.count == 3)
        #expect(activities[0]["progress"] == ours[steps: ["activity", 0, "progress"]])
        #expect(activities[1]["detail"]?["description"] == "Ultrasound of both kidneys")
        #expect(activities[2] == added)
        #expect(decision(outcome, Self.potassium + ".progress")?.took == .ours)
        #expect(decision(outcome, Self.echography + ".detail.description")?.took == .theirs)
        let addition = try #require(decision(outcome, "CarePlan.activity[http://snomed.info/sct|91251008]"))
        #expect(addition.rule == "careplan-activity")
        #expect(addition.took == .theirs)
    }

    @Test("keyed-list: an activity removed on one side and edited on the other is held for review")
    func keyedListRemoveVersusEdit() throws {
        guard let base = try Fixtures.load(Self.renal) else { return }
        var ours = base
        ours[steps: ["activity", 1]] = nil
        ours["description"] = "Echography no longer needed"
        var theirs = base
        theirs[steps: ["activity", 1, "detail", "status"]] = "cancelled"
        let outcome = run(base, ours, theirs)
        #expect(outcome.status == .conflict)
        let held = try #require(conflict(outcome, Self.echography))
        #expect(held.rule == "safety-delete-vs-edit")
        #expect(held.ours == nil)
        #expect(held.theirs == theirs[steps: ["activity", 1]])
        #expect(outcome.result?["activity"]?.arrayValue?.count == 1, "ours (removed) stays until resolved")
        #expect(outcome.result?["description"] == "Echography no longer needed")
    }

    @Test("keyed-list: two items with one merge key are never guessed at; the list is held for review")
    func keyedListDuplicateKeys() throws {
        guard let base = try Fixtures.load(Self.renal) else { return }
        var ours = base
        ours[steps: ["activity", 0, "detail", "description"]] = "Take with food"
        var theirs = base
        theirs.append(try #require(base[steps: ["activity", 1]]), to: "activity")
        let outcome = run(base, ours, theirs)
        let held = try #require(conflict(outcome, "CarePlan.activity"))
        #expect(held.rule == "careplan-activity")
        #expect(held.message.contains("share the merge key [http://snomed.info/sct|306005]"))
        #expect(outcome.result?["activity"] == ours["activity"])

        let oneSided = run(base, base, theirs)
        #expect(oneSided.status == .merged, "changed on one side only: that side's list is taken as it is")
        #expect(oneSided.result?["activity"] == theirs["activity"])
    }

    @Test("keyed-list: items without any merge key make the list compare as a whole")
    func keyedListWithoutKeys() throws {
        guard let base = try Fixtures.load(Self.integrated) else { return }
        var ours = base
        ours[steps: ["activity", 0, "detail", "description"]] = "Hub wording"
        var theirs = base
        theirs[steps: ["activity", 1, "detail", "description"]] = "Provider wording"
        let outcome = run(base, ours, theirs)
        let held = try #require(conflict(outcome, "CarePlan.activity"))
        #expect(held.rule == "careplan-activity")
        #expect(held.message.contains("none of the merge keys"))

        let oneSided = run(base, base, theirs)
        #expect(oneSided.status == .merged)
        #expect(oneSided.result?["activity"] == theirs["activity"])
    }

    @Test("keyed-list: identifiers by system|value, Encounter participants and RelatedPerson telecom keep both sides' additions")
    func keyedListIdentifiersParticipantsTelecom() throws {
        guard let plan = try Fixtures.load(Self.general), let encounter = try Fixtures.load(Self.inpatient),
            let person = try Fixtures.load(Self.relatedPerson)
        else { return }
        var ours = plan
        ours.append(["system": "https://fhir.nhs.uk/Id/hub-plan", "value": "H1"], to: "identifier")
        var theirs = plan
        theirs.append(["system": "https://fhir.example-trust.nhs.uk/Id/plan", "value": "T1"], to: "identifier")
        let identifiers = run(plan, ours, theirs)
        #expect(identifiers.status == .merged)
        #expect(identifiers.result?["identifier"]?.arrayValue?.count == (plan["identifier"]?.arrayValue?.count ?? 0) + 2)
        #expect(decision(identifiers, "CarePlan.identifier[https://fhir.example-trust.nhs.uk/Id/plan|T1]")?.rule == "careplan-identifier")

        var oursEncounter = encounter
        oursEncounter.append(["individual": ["reference": "Practitioner/hub-nurse"]], to: "participant")
        var theirsEncounter = encounter
        theirsEncounter.append(["individual": ["reference": "Practitioner/f202"]], to: "participant")
        let participants = run(encounter, oursEncounter, theirsEncounter)
        #expect(participants.status == .merged)
        #expect(participants.result?["participant"]?.arrayValue?.count == 3)
        #expect(decision(participants, "Encounter.participant[Practitioner/f202]")?.rule == "encounter-participant")

        var oursPerson = person
        oursPerson.append(["system": "email", "value": "jane.smith@example.org"], to: "telecom")
        var theirsPerson = person
        theirsPerson.append(["system": "phone", "value": "07700900123", "use": "mobile"], to: "telecom")
        let telecom = run(person, oursPerson, theirsPerson)
        #expect(telecom.status == .merged)
        #expect(telecom.result?["telecom"]?.arrayValue?.map { $0["value"] } == ["01632960587", "jane.smith@example.org", "07700900123"])
    }

    // MARK: set

    @Test("set: additions and removals from both sides are applied to references and categories")
    func setReferencesAndCategories() throws {
        guard let base = try Fixtures.load(Self.general), let wellness = try Fixtures.load(Self.wellness) else { return }
        var ours = base
        ours.append(["reference": "Condition/hub-added"], to: "addresses")
        var theirs = base
        theirs["addresses"] = nil
        theirs.append(["reference": "CareTeam/provider-team"], to: "careTeam")
        let outcome = run(base, ours, theirs)
        #expect(outcome.status == .merged)
        #expect(outcome.result?["addresses"] == [["reference": "Condition/hub-added"]])
        #expect(outcome.result?["careTeam"]?.arrayValue?.last == ["reference": "CareTeam/provider-team"])
        #expect(decision(outcome, "CarePlan.addresses[#p1]")?.took == .theirs)
        #expect(decision(outcome, "CarePlan.addresses[Condition/hub-added]")?.rule == "careplan-addresses")

        let diabetes: JSON = ["coding": [["system": "http://snomed.info/sct", "code": "735985000", "display": "Diabetes self management plan"]]]
        let exercise: JSON = ["coding": [["system": "http://snomed.info/sct", "code": "736366004", "display": "Exercise care plan"]]]
        var oursPlan = wellness
        oursPlan.append(diabetes, to: "category")
        var theirsPlan = wellness
        theirsPlan.append(exercise, to: "category")
        theirsPlan.append(diabetes, to: "category")
        let categories = run(wellness, oursPlan, theirsPlan)
        #expect(categories.result?["category"]?.arrayValue == [wellness[steps: ["category", 0]]!, diabetes, exercise])
        #expect(decision(categories, "CarePlan.category[http://snomed.info/sct|735985000]")?.took == .both)
    }

    // MARK: append-only

    @Test("append-only: notes from both sides are kept and a removal is not applied when both sides changed them")
    func appendOnlyNotes() throws {
        guard let base = try Fixtures.load(Self.integrated) else { return }
        let baseNote = try #require(base[steps: ["note", 0]])
        var ours = base
        ours["note"] = [["text": "Hub note: discussed with daughter"]]
        var theirs = base
        theirs.append(["text": "Provider note: seen in clinic"], to: "note")
        let outcome = run(base, ours, theirs)
        #expect(outcome.status == .merged)
        #expect(outcome.result?["note"]?.arrayValue == [["text": "Hub note: discussed with daughter"], baseNote, ["text": "Provider note: seen in clinic"]])
        #expect(outcome.decisions.contains { $0.rule == "careplan-note" && $0.explanation.contains("append-only") })
    }

    @Test("append-only: Encounter status history gains both sides' entries")
    func appendOnlyStatusHistory() throws {
        guard let base = try Fixtures.load(Self.emergency) else { return }
        var ours = base
        ours.append(["status": "triaged", "period": ["start": "2017-02-01T07:20:00+10:00"]], to: "statusHistory")
        var theirs = base
        theirs.append(["status": "onleave", "period": ["start": "2017-02-01T09:00:00+10:00"]], to: "statusHistory")
        let outcome = run(base, ours, theirs, origin: .theirs)
        #expect(outcome.status == .merged)
        #expect(outcome.result?["statusHistory"]?.arrayValue?.count == (base["statusHistory"]?.arrayValue?.count ?? 0) + 2)
    }

    // MARK: status-machine

    @Test("status-machine: a forward move wins; two different forward moves conflict")
    func statusMachineForward() throws {
        guard let base = try Fixtures.load(Self.renal) else { return }  // status draft
        var ours = base
        ours["description"] = "Hub edit"
        var theirs = base
        theirs["status"] = "active"
        let forward = run(base, ours, theirs)
        #expect(forward.status == .merged)
        #expect(forward.result?["status"] == "active")
        #expect(decision(forward, "CarePlan.status")?.rule == "careplan-status")

        ours["status"] = "active"
        theirs["status"] = "completed"
        let twoMoves = run(base, ours, theirs)
        let held = try #require(conflict(twoMoves, "CarePlan.status"))
        #expect(held.rule == "careplan-status")
        #expect(held.message.contains("two different forward moves"))
    }

    @Test("status-machine: a backward move is held for review when the other side also edited the record")
    func statusMachineBackward() throws {
        guard let base = try Fixtures.load(Self.renal) else { return }  // both activities completed
        var theirs = base
        theirs[steps: ["activity", 0, "detail", "status"]] = "in-progress"
        var ours = base
        ours["description"] = "Hub edit"
        let outcome = run(base, ours, theirs)
        let held = try #require(conflict(outcome, Self.potassium + ".detail.status"))
        #expect(held.rule == "careplan-activity-status")
        #expect(outcome.result?[steps: ["activity", 0, "detail", "status"]] == "completed")
        #expect(outcome.result?["description"] == "Hub edit")

        let alone = run(base, base, theirs)
        #expect(alone.status == .merged, "no concurrent edit: the provider's own correction is taken")
        #expect(alone.result?[steps: ["activity", 0, "detail", "status"]] == "in-progress")
    }

    // MARK: authority

    @Test("authority: the originating side's value wins where both changed; unknown origin holds it for review")
    func authorityEncounter() throws {
        guard let base = try Fixtures.load(Self.inpatient) else { return }
        var ours = base
        ours["period"] = ["start": "2013-03-11", "end": "2013-03-21"]
        ours["class"]?["code"] = "EMER"
        var theirs = base
        theirs["period"] = ["start": "2013-03-11", "end": "2013-03-19"]
        theirs["class"]?["code"] = "HH"

        let provider = run(base, ours, theirs, origin: .theirs)
        #expect(provider.status == .merged)
        #expect(provider.result?["period"] == theirs["period"])
        #expect(provider.result?["class"]?["code"] == "HH")
        let period = try #require(decision(provider, "Encounter.period"))
        #expect(period.rule == "encounter-period")
        #expect(period.took == .theirs)
        #expect(period.discarded == ours["period"])
        #expect(decision(provider, "Encounter.class.code")?.rule == "encounter-origin-owns")

        let hub = run(base, ours, theirs, origin: .ours)
        #expect(hub.result?["period"] == ours["period"])

        let unknown = run(base, ours, theirs)
        #expect(unknown.status == .conflict)
        #expect(conflict(unknown, "Encounter.period")?.rule == "encounter-period")
        #expect(conflict(unknown, "Encounter.class.code")?.rule == "encounter-origin-owns")
    }

    @Test("authority never turns a deletion against an edit into a silent delete")
    func authorityKeepsDeleteVersusEdit() throws {
        guard let base = try Fixtures.load(Self.inpatient) else { return }
        var ours = base
        ours["hospitalization"] = nil
        var theirs = base
        theirs["hospitalization"]?["admitSource"] = ["text": "Emergency department"]
        let outcome = run(base, ours, theirs, origin: .ours)
        let held = try #require(conflict(outcome, "Encounter.hospitalization"))
        #expect(held.rule == "safety-delete-vs-edit")
    }

    // MARK: never-auto

    @Test("never-auto: a changed daily amount is held for review while the other side also edited the plan")
    func neverAutoDailyAmount() throws {
        guard let base = try Fixtures.load(Self.renal) else { return }
        var theirs = base
        theirs[steps: ["activity", 0, "detail", "dailyAmount", "value"]] = .number(JSONNumber("90")!)
        var ours = base
        ours["description"] = "Hub edit"
        let outcome = run(base, ours, theirs)
        let held = try #require(conflict(outcome, Self.potassium + ".detail.dailyAmount"))
        #expect(held.rule == "careplan-activity-daily-amount")
        #expect(held.hazard.contains("overdose"))
        #expect(outcome.result?[steps: ["activity", 0, "detail", "dailyAmount", "value"]] == 80)

        let alone = run(base, base, theirs)
        #expect(alone.status == .merged)
        #expect(alone.result?[steps: ["activity", 0, "detail", "dailyAmount", "value"]] == 90)

        var flipped = base
        flipped[steps: ["activity", 1, "detail", "doNotPerform"]] = true
        let doNotPerform = run(base, ours, flipped)
        #expect(conflict(doNotPerform, Self.echography + ".detail.doNotPerform")?.rule == "careplan-activity-do-not-perform")
    }

    @Test("never-auto: a decimal keeps its precision through a merge")
    func decimalPrecision() throws {
        guard let base = try Fixtures.load(Self.renal) else { return }
        var theirs = base
        theirs[steps: ["activity", 0, "detail", "dailyAmount", "value"]] = .number(JSONNumber("80.50")!)
        let outcome = run(base, base, theirs)
        #expect(outcome.result?.text().contains("\"value\":80.50") == true)
    }

    // MARK: safety rules

    @Test("safety: a different subject NHS number between any two sides is refused, with the numbers masked")
    func wrongPatient() throws {
        guard let base = try Fixtures.load(Self.relatedPerson) else { return }  // patient 9000000009
        var other = base
        other["patient"]?["identifier"]?["value"] = "9434765919"
        for (b, o, t) in [(base, base, other), (base, other, base), (other, base, base)] {
            let outcome = run(b, o, t)
            #expect(outcome.status == .refused)
            #expect(outcome.result == nil)
            let error = try #require(outcome.errors.first)
            #expect(error.code == .wrongPatient)
            #expect(error.rule == "safety-wrong-patient")
            #expect(!error.message.contains("9434765919") && !error.message.contains("9000000009"))
            #expect(error.message.contains("*******919"))
        }
        var twoNumbers = base
        twoNumbers["patient"]?["reference"] = "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919"
        #expect(run(base, base, twoNumbers).errors.map(\.code) == [.ambiguousPatient])
    }

    @Test("safety: delete against edit is a conflict, never a silent delete; delete against no change is taken")
    func deleteVersusEdit() throws {
        guard let base = try Fixtures.load(Self.renal) else { return }
        var edited = base
        edited["description"] = "Edited"

        let hubDeleted = run(base, nil, edited)
        #expect(hubDeleted.status == .conflict)
        #expect(hubDeleted.conflicts.map(\.path) == ["CarePlan"])
        #expect(hubDeleted.conflicts.first?.rule == "safety-delete-vs-edit")
        #expect(hubDeleted.result == nil)

        let providerDeleted = run(base, edited, nil)
        #expect(providerDeleted.status == .conflict)
        #expect(providerDeleted.result == edited)

        var versionOnly = base
        versionOnly["meta"]?["versionId"] = "7"
        let deletion = run(base, nil, versionOnly)
        #expect(deletion.status == .merged, "a new version with the same content is no edit")
        #expect(deletion.result == nil)
        #expect(deletion.decisions.first?.took == .ours)
    }

    @Test("safety: entered-in-error on one side is a conflict unless both sides agree, for plans and activities")
    func enteredInError() throws {
        guard let base = try Fixtures.load(Self.renal), let integrated = try Fixtures.load(Self.integrated) else { return }
        var retracted = base
        retracted["status"] = "entered-in-error"
        let one = run(base, base, retracted)
        #expect(one.status == .conflict)
        #expect(conflict(one, "CarePlan.status")?.rule == "safety-entered-in-error")
        #expect(one.result?["status"] == "draft")
        #expect(run(base, retracted, retracted).status == .merged)

        var activityRetracted = base
        activityRetracted[steps: ["activity", 1, "detail", "status"]] = "entered-in-error"
        let activity = run(base, base, activityRetracted)
        #expect(conflict(activity, Self.echography + ".detail.status")?.rule == "safety-entered-in-error")

        var unkeyed = integrated
        unkeyed[steps: ["activity", 2, "detail", "status"]] = "entered-in-error"
        let coarse = run(integrated, integrated, unkeyed)
        let held = try #require(conflict(coarse, "CarePlan.activity"))
        #expect(held.rule == "safety-entered-in-error")
    }

    @Test("server-managed elements are not merged: the result carries the hub's id, versionId and lastUpdated")
    func serverManaged() throws {
        guard let base = try Fixtures.load(Self.inpatient) else { return }
        var ours = base
        ours["meta"]?["versionId"] = "12"
        ours["meta"]?["lastUpdated"] = "2025-04-01T09:30:00.000Z"
        var theirs = base
        theirs["id"] = "provider-local-id"
        theirs["meta"]?["versionId"] = "3"
        theirs["meta"]?["lastUpdated"] = "2025-04-02T10:00:00.000+01:00"
        theirs["meta"]?["source"] = "urn:example:provider"
        let outcome = run(base, ours, theirs, origin: .theirs)
        #expect(outcome.status == .merged)
        #expect(outcome.result?["id"] == "f203")
        #expect(outcome.result?["meta"]?["versionId"] == "12")
        #expect(outcome.result?["meta"]?["lastUpdated"] == "2025-04-01T09:30:00.000Z")
        #expect(outcome.result?["meta"]?["source"] == "urn:example:provider", "other meta elements merge as usual")
        #expect(!outcome.decisions.contains { $0.path.hasPrefix("Encounter.id") || $0.path.hasPrefix("Encounter.meta.versionId") })
    }

    @Test("two-way: without a base every difference is a conflict, except set unions and keyed-list additions")
    func twoWay() throws {
        guard let base = try Fixtures.load(Self.general) else { return }
        var ours = base
        ours.append(["reference": "CareTeam/hub-team"], to: "careTeam")
        ours["description"] = "Hub description"
        var theirs = base
        theirs.append(["reference": "CareTeam/provider-team"], to: "careTeam")
        theirs.append(["system": "https://fhir.example-trust.nhs.uk/Id/plan", "value": "T9"], to: "identifier")
        theirs["description"] = "Provider description"
        let outcome = run(nil, ours, theirs)
        #expect(outcome.status == .conflict)
        #expect(outcome.conflicts.map(\.path) == ["CarePlan.description"])
        #expect(outcome.result?["careTeam"]?.arrayValue?.suffix(2) == [["reference": "CareTeam/hub-team"], ["reference": "CareTeam/provider-team"]])
        #expect(outcome.result?["identifier"]?.arrayValue?.last == ["system": "https://fhir.example-trust.nhs.uk/Id/plan", "value": "T9"])
    }

    @Test("inputs that are not resources of one type are refused")
    func mismatchedInputs() throws {
        guard let plan = try Fixtures.load(Self.renal), let encounter = try Fixtures.load(Self.inpatient) else { return }
        #expect(run(plan, plan, encounter).errors.map(\.code) == [.resourceTypeMismatch])
        #expect(run(plan, plan, [1, 2]).errors.map(\.code) == [.notAResource])
        #expect(run(nil, nil, nil) == MergeOutcome(status: .merged, result: nil, decisions: [], conflicts: [], errors: []))
    }
}
