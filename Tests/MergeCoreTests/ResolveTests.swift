import FHIRJSON
import MergeCore
import PropertyBased
import Testing

/// `resolve(…choices:)`: an operator's resolution is the merge with each chosen conflicting path set to
/// the chosen version's value, and nothing else different.
@Suite("Resolving conflicts by path")
struct ResolveTests {
    let policy = MergePolicy.default

    static func carePlan(status: String, dose: Int, activities: String = "") -> JSON {
        try! JSON.parse(
            Array(
                """
                {"resourceType":"CarePlan","id":"cp-1","status":"\(status)","intent":"plan",
                 "subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}},
                 "note":[{"text":"n1"}],
                 "activity":[{"id":"act-1","detail":{"status":"in-progress","dailyAmount":{"value":\(dose),"unit":"tablet"}}}\(activities)]}
                """.utf8))
    }

    @Test("each chosen path takes base, ours or theirs; paths without a choice keep ours; the rest merges as before")
    func choices() {
        let base = Self.carePlan(status: "active", dose: 1)
        var ours = Self.carePlan(status: "completed", dose: 2)
        ours["note"] = [["text": "n1"], ["text": "from the hub"]]
        let theirs = Self.carePlan(status: "revoked", dose: 3)
        let merged = merge(base: base, ours: ours, theirs: theirs, policy: policy)
        let paths = merged.conflicts.map(\.path)
        #expect(paths == ["CarePlan.status", "CarePlan.activity[act-1].detail.dailyAmount"])

        let dosePath = "CarePlan.activity[act-1].detail.dailyAmount"
        let theirsDose = resolve(base: base, ours: ours, theirs: theirs, policy: policy, choices: [dosePath: .theirs])
        #expect(theirsDose.conflicts.map(\.path) == paths, "the conflicts are still reported")
        var expected = try! #require(merged.result)
        expected["activity"] = theirs["activity"]
        #expect(theirsDose.result == expected)

        let baseStatus = resolve(base: base, ours: ours, theirs: theirs, policy: policy, choices: ["CarePlan.status": .base, dosePath: .ours])
        expected = try! #require(merged.result)
        expected["status"] = "active"
        #expect(baseStatus.result == expected)
        #expect(baseStatus.result?["note"]?.arrayValue?.count == 2, "the hub's note merged as before")
    }

    @Test("a removal against an edit: choosing the side that removed removes, the other keeps the edit")
    func removalAgainstEdit() {
        let second = #",{"id":"act-2","detail":{"status":"scheduled","description":"physio"}}"#
        let base = Self.carePlan(status: "active", dose: 1, activities: second)
        let ours = Self.carePlan(status: "active", dose: 1)  // the hub removed act-2
        let theirs = Self.carePlan(
            status: "active", dose: 1, activities: #",{"id":"act-2","detail":{"status":"scheduled","description":"physio twice a week"}}"#)
        let merged = merge(base: base, ours: ours, theirs: theirs, policy: policy)
        #expect(merged.conflicts.map(\.path) == ["CarePlan.activity[act-2]"])
        #expect(merged.result?["activity"]?.arrayValue?.count == 1)

        let keep = resolve(base: base, ours: ours, theirs: theirs, policy: policy, choices: ["CarePlan.activity[act-2]": .theirs])
        #expect(keep.result?["activity"]?.arrayValue?.last?["detail"]?["description"] == "physio twice a week")
        let remove = resolve(base: base, ours: ours, theirs: theirs, policy: policy, choices: ["CarePlan.activity[act-2]": .ours])
        #expect(remove.result == merged.result)
        let restore = resolve(base: base, ours: ours, theirs: theirs, policy: policy, choices: ["CarePlan.activity[act-2]": .base])
        #expect(restore.result?["activity"]?.arrayValue?.last?["detail"]?["description"] == "physio")
    }

    @Test("no choices, or ours everywhere, is exactly the merge (generated records)")
    func oursIsTheMerge() async {
        await propertyCheck(count: 300, input: Synthetic.scenarios) { scenario in
            let merged = merge(base: scenario.base, ours: scenario.ours, theirs: scenario.theirs, policy: policy)
            let none = resolve(base: scenario.base, ours: scenario.ours, theirs: scenario.theirs, policy: policy, choices: [:])
            #expect(none == merged)
            let choices = Dictionary(merged.conflicts.map { ($0.path, ConflictChoice.ours) }) { first, _ in first }
            let allOurs = resolve(base: scenario.base, ours: scenario.ours, theirs: scenario.theirs, policy: policy, choices: choices)
            #expect(allOurs.result == merged.result)
        }
    }

    @Test("theirs at every conflicting path leaves no path where the result differs from theirs' value there")
    func theirsEverywhere() async {
        await propertyCheck(count: 300, input: Synthetic.scenarios) { scenario in
            let merged = merge(base: scenario.base, ours: scenario.ours, theirs: scenario.theirs, policy: policy)
            guard merged.status == .conflict else { return }
            let choices = Dictionary(merged.conflicts.map { ($0.path, ConflictChoice.theirs) }) { first, _ in first }
            let resolved = resolve(base: scenario.base, ours: scenario.ours, theirs: scenario.theirs, policy: policy, choices: choices)
            // Merging the resolved record against theirs (as the new hub version) holds nothing: every held
            // value is now theirs'.
            let again = merge(base: scenario.base, ours: resolved.result, theirs: scenario.theirs, policy: policy)
            #expect(again.conflicts.filter { choices[$0.path] != nil }.isEmpty, "\(again.conflicts.map(\.path))")
        }
    }
}
