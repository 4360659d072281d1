import CaresyncTestSupport
import FHIRJSON
import FHIRModel
import Foundation
import MergeCore
import StateStore
import Testing

@Suite("caresync conflicts list and show")
struct ConflictsCommandTests {
    @Test("list: open conflicts with peer, record, masked patient and paths; --patient filters; --json matches")
    func list() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        let ids = try await fixture.fillTroubled()

        let result = try await caresync(["conflicts", "list", "--state-dir", fixture.stateDirectory])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output[0] == "ID  STATE  AGE  PEER     RECORD         PATIENT     PATHS")
        #expect(result.output[1].hasPrefix(" \(ids.conflict)  open   1h   trust-a  CarePlan cp-1  *******919  \(ids.conflictPaths[0]) (+1 more)"), "\(result.output)")
        #expect(result.output.last == "1 open conflict; see one with: caresync conflicts show ID")

        // `conflicts` alone lists too.
        let bare = try await caresync(["conflicts", "--state-dir", fixture.stateDirectory])
        #expect(bare.output == result.output)

        let other = try await caresync(["conflicts", "list", "--patient", patientB.digits, "--state-dir", fixture.stateDirectory])
        #expect(other.output == ["no open conflicts"])

        let json = try await caresync(["conflicts", "list", "--all", "--patient", patientA.digits, "--json", "--state-dir", fixture.stateDirectory])
        #expect(json.status == 0)
        try await expectValid(json.text, schema: "conflicts-list.schema.json")
        let conflicts = try #require(try parseJSON(json.text)["conflicts"]?.arrayValue)
        #expect(conflicts.count == 1)
        #expect(conflicts[0]["paths"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == ids.conflictPaths)
        #expect(!json.text.contains(patientA.digits))
    }

    @Test("show: per path the base, ours and theirs values, the rule and its hazard from the policy")
    func show() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        let ids = try await fixture.fillTroubled()

        let result = try await caresync(["conflicts", "show", String(ids.conflict), "--state-dir", fixture.stateDirectory])
        #expect(result.status == 0, "\(result.errors)")
        let text = result.text
        #expect(result.output[0] == "conflict \(ids.conflict) (open): CarePlan https://fhir.trust-a.example.nhs.uk/careplan|cp-1")
        #expect(result.output[1] == "  between the hub (ours) and trust-a (theirs), patient *******919")
        let dose = try #require(MergePolicy.default.rule(id: "careplan-activity-daily-amount"))
        #expect(text.contains("CarePlan.activity[act-1].detail.dailyAmount  [careplan-activity-daily-amount]"))
        #expect(text.contains("  hazard: \(dose.hazard)"))
        #expect(text.contains(#"  base:   {"value":1,"unit":"tablet""#))
        #expect(text.contains(#"  ours:   {"value":2,"unit":"tablet","system":"http://unitsofmeasure.org","code":"{tbl}"}  (hub)"#))
        #expect(text.contains(#"  theirs: {"value":3,"unit":"tablet","system":"http://unitsofmeasure.org","code":"{tbl}"}  (trust-a)"#))
        let status = try #require(MergePolicy.default.rule(id: "careplan-status"))
        #expect(text.contains("CarePlan.status  [careplan-status]"))
        #expect(text.contains("  hazard: \(status.hazard)"))
        #expect(text.contains(#"  base:   "active""#))
        #expect(text.contains(#"  ours:   "completed"  (hub)"#))
        #expect(text.contains(#"  theirs: "revoked"  (trust-a)"#))
        #expect(!text.contains("\u{1B}["), "plain when piped")
        #expect(!text.contains(patientA.digits))
    }

    @Test("show on a terminal: coloured labels; NO_COLOR keeps it plain")
    func colour() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        let ids = try await fixture.fillTroubled()

        let coloured = try await Helper.onTerminal(["conflicts", "show", String(ids.conflict), "--state-dir", fixture.stateDirectory])
        #expect(coloured.status == 0)
        #expect(coloured.text.contains("\u{1B}[33mhazard:\u{1B}[0m"))
        #expect(coloured.text.contains("\u{1B}[34mours:  \u{1B}[0m"))
        #expect(coloured.text.contains("\u{1B}[35mtheirs:\u{1B}[0m"))
        let plain = try await Helper.onTerminal(
            ["conflicts", "show", String(ids.conflict), "--state-dir", fixture.stateDirectory], environment: ["NO_COLOR": ""])
        #expect(!plain.text.contains("\u{1B}["))
        #expect(plain.text.contains("hazard:"))
    }

    @Test("show --json: the paths with values and hazards, the three records; matches the schema")
    func showJSON() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        let ids = try await fixture.fillTroubled()

        let result = try await caresync(["conflicts", "show", String(ids.conflict), "--json", "--state-dir", fixture.stateDirectory])
        #expect(result.status == 0)
        try await expectValid(result.text, schema: "conflicts-show.schema.json")
        let document = try parseJSON(result.text)
        let paths = try #require(document["paths"]?.arrayValue)
        let dose = try #require(paths.first { $0["path"] == "CarePlan.activity[act-1].detail.dailyAmount" })
        #expect(dose["reproduced"] == true)
        #expect(dose["ours"]?["value"] == 2)
        #expect(dose["theirs"]?["value"] == 3)
        #expect(dose["base"]?["value"] == 1)
        #expect(document["ours"]?["status"] == "completed")
        #expect(document["theirs"]?["status"] == "revoked")
        #expect(document["resolution"] == .null)
    }

    @Test("bad input: an unknown id, a malformed NHS number: one line, exit 2")
    func badInput() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillTroubled()

        let unknown = try await caresync(["conflicts", "show", "42", "--state-dir", fixture.stateDirectory])
        #expect(unknown.status == 2)
        #expect(unknown.errors == ["caresync conflicts show: no conflict with id 42 (caresync conflicts list --all shows them)"])

        for (number, rule) in [("9434765918", "Modulus 11"), ("943 476 5919", "without spaces"), ("12345", "exactly 10 digits"), ("0000000000", "identical")] {
            let bad = try await caresync(["conflicts", "list", "--patient", number, "--state-dir", fixture.stateDirectory])
            #expect(bad.status == 2)
            #expect(bad.errors.count == 1)
            #expect(bad.errors.first?.hasPrefix("caresync conflicts list: --patient: not a valid NHS number: ") == true, "\(bad.errors)")
            #expect(bad.errors.first?.contains(rule) == true, "\(bad.errors)")
            #expect(bad.errors.first?.contains(number) == false, "the number is not echoed")
        }
    }
}
