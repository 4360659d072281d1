import CaresyncTestSupport
import FHIRJSON
import Foundation
import Testing

/// `caresync merge` as a real child process: exit codes, one-line input errors, and `--json` checked by
/// Python `jsonschema` against `Schemas/cli/merge.schema.json`.
@Suite("caresync merge (child process)")
struct MergeCommandTests {
    static let schema = TestPaths.repositoryRoot.appendingPathComponent("Schemas/cli/merge.schema.json")

    struct Run {
        var status: Int32
        var stdout: [String]
        var stderr: [String]
        var text: String { stdout.joined(separator: "\n") }
    }

    func caresync(_ arguments: [String]) async throws -> Run {
        let child = try ChildProcess(executable: try TestPaths.product("caresync"), arguments: arguments)
        let status = try await child.waitForExit()
        return Run(status: status, stdout: child.output, stderr: child.errors)
    }

    /// Writes base, ours and theirs (generated: the test needs no shared fixtures) and returns their paths.
    func write(_ directory: TemporaryDirectory, base: JSON?, ours: JSON, theirs: JSON) throws -> [String] {
        var arguments: [String] = []
        for (name, value) in [("base", base), ("ours", ours), ("theirs", theirs)] {
            guard let value else { continue }
            let file = directory.path("\(name).json")
            try Data(value.serialized(.pretty)).write(to: file)
            arguments += ["--\(name)", file.path]
        }
        return arguments
    }

    func plan() -> JSON {
        var dice = Dice(seed: 2025)
        var plan = Synthetic.carePlan(&dice)
        plan["status"] = "active"
        return plan
    }

    func checkAgainstSchema(_ run: Run, in directory: TemporaryDirectory) async throws -> JSON {
        let output = directory.path("output.json")
        try Data(run.text.utf8).write(to: output)
        let problems = try await PythonJSONSchema.problems(instance: output, schema: Self.schema)
        #expect(problems == nil, "\(problems ?? "")")
        return try JSON.parse(run.text)
    }

    @Test("merged: exit 0, --json valid against the schema, decisions name their rules")
    func merged() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let base = plan()
        var theirs = base
        theirs["description"] = "Provider edit"
        var ours = base
        ours.append(["text": "Hub note"], to: "note")
        let files = try write(directory, base: base, ours: ours, theirs: theirs)
        let run = try await caresync(["merge"] + files + ["--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try await checkAgainstSchema(run, in: directory)
        #expect(report["status"] == "merged")
        #expect(report["result"]?["description"] == "Provider edit")
        #expect(report["decisions"]?.arrayValue?.contains { $0["path"] == "CarePlan.description" && $0["rule"] == "default-three-way" } == true)

        let human = try await caresync(["merge"] + files)
        #expect(human.status == 0)
        #expect(human.stdout.first?.hasPrefix("merged: ") == true)
        #expect(human.text.contains("\"description\": \"Provider edit\""), "the merged resource is printed")
    }

    @Test("conflict: exit 3, the conflict lists base, ours and theirs; without --base a two-way merge")
    func conflict() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let base = plan()
        var ours = base
        ours["status"] = "completed"
        var theirs = base
        theirs["status"] = "on-hold"
        theirs["title"] = "Provider title"
        let files = try write(directory, base: base, ours: ours, theirs: theirs)
        let run = try await caresync(["merge"] + files + ["--json"])
        #expect(run.status == 3)
        let report = try await checkAgainstSchema(run, in: directory)
        #expect(report["status"] == "conflict")
        let conflict = try #require(report["conflicts"]?.arrayValue?.first)
        #expect(conflict["path"] == "CarePlan.status")
        #expect(conflict["rule"] == "careplan-status")
        #expect(conflict["base"] == "active" && conflict["ours"] == "completed" && conflict["theirs"] == "on-hold")
        #expect(report["result"]?["status"] == "completed")
        #expect(report["result"]?["title"] == "Provider title")

        let human = try await caresync(["merge"] + files)
        #expect(human.status == 3)
        #expect(human.stdout.first == "conflict: 1 path held for review, 1 automatic decision")
        #expect(human.text.contains("hazard: "))

        let twoWay = try write(directory, base: nil, ours: ours, theirs: theirs)
        let noBase = try await caresync(["merge"] + twoWay + ["--json"])
        #expect(noBase.status == 3)
        let twoWayReport = try await checkAgainstSchema(noBase, in: directory)
        #expect(Set(twoWayReport["conflicts"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []) == ["CarePlan.status", "CarePlan.title"])
    }

    @Test("refused: exit 4 for a different NHS number, no result, the number masked")
    func refused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let base = plan()
        var theirs = base
        theirs["subject"]?["identifier"]?["value"] = "9434765919"
        let files = try write(directory, base: base, ours: base, theirs: theirs)
        let run = try await caresync(["merge"] + files + ["--json"])
        #expect(run.status == 4)
        let report = try await checkAgainstSchema(run, in: directory)
        #expect(report["status"] == "refused")
        #expect(report["result"] == .null)
        #expect(report["errors"]?.arrayValue?.first?["code"] == "wrong-patient")
        #expect(!run.text.contains("9434765919"))

        let human = try await caresync(["merge"] + files)
        #expect(human.status == 4)
        #expect(human.stdout.first == "refused: no merge was made")
    }

    @Test("invalid input: exit 2 with one line naming the file and the problem", arguments: ["missing", "not-json", "not-resource", "bad-policy", "no-ours", "bad-origin"])
    func invalidInput(_ problem: String) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let base = plan()
        var files = try write(directory, base: base, ours: base, theirs: base)
        let broken = directory.path("broken.json")
        var expected = ""
        switch problem {
        case "missing":
            files[3] = directory.path("absent.json").path
            expected = "--ours \(files[3]): no such file"
        case "not-json":
            try Data("{\"resourceType\": \"CarePlan\",".utf8).write(to: broken)
            files[5] = broken.path
            expected = "--theirs \(broken.path): not valid JSON: "
        case "not-resource":
            try Data("[1, 2, 3]".utf8).write(to: broken)
            files[1] = broken.path
            expected = "--base \(broken.path): not a FHIR resource"
        case "bad-policy":
            try Data(#"{"policyVersion": "1", "defaultRule": {"id": "d", "strategy": "three-way", "hazard": "h", "rationale": "r"}, "rules": [{"id": "x", "path": "CarePlan.status", "strategy": "newest-wins", "hazard": "h", "rationale": "r"}]}"#.utf8)
                .write(to: broken)
            files += ["--policy", broken.path]
            expected = "--policy \(broken.path): rule x, field strategy: unknown strategy \"newest-wins\""
        case "no-ours":
            files.removeSubrange(2...3)
            expected = "--ours FILE is required"
        default:
            files += ["--origin", "elsewhere"]
            expected = "--origin is ours or theirs"
        }
        let run = try await caresync(["merge"] + files)
        #expect(run.status == 2)
        #expect(run.stderr.count == 1, "\(run.stderr)")
        #expect(run.stderr.first?.hasPrefix("caresync merge: " + expected) == true, "\(run.stderr)")
        #expect(run.stdout.isEmpty)
    }

    @Test("--policy loads another policy file; --origin settles authority rules")
    func policyAndOrigin() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var dice = Dice(seed: 7)
        let base = Synthetic.encounter(&dice)
        var ours = base
        ours["period"] = ["start": "2025-01-01T10:00:00Z", "end": "2025-01-01T11:00:00Z"]
        var theirs = base
        theirs["period"] = ["start": "2025-01-01T10:00:00Z", "end": "2025-01-01T12:00:00Z"]
        let files = try write(directory, base: base, ours: ours, theirs: theirs)
        #expect(try await caresync(["merge"] + files).status == 3, "origin unknown: held for review")
        let fromProvider = try await caresync(["merge"] + files + ["--origin", "theirs", "--json"])
        #expect(fromProvider.status == 0)
        #expect(try JSON.parse(fromProvider.text)["result"]?["period"] == theirs["period"])

        let policy = directory.path("policy.json")
        let text = #"{"policyVersion": "test", "defaultRule": {"id": "fallback", "strategy": "three-way", "hazard": "A change is lost.", "rationale": "Three-way."}, "rules": [{"id": "hub-owns-period", "path": "Encounter.period", "strategy": "authority", "owner": "hub", "hazard": "h", "rationale": "r"}]}"#
        try Data(text.utf8).write(to: policy)
        let hubOwned = try await caresync(["merge"] + files + ["--policy", policy.path, "--json"])
        #expect(hubOwned.status == 0)
        let report = try JSON.parse(hubOwned.text)
        #expect(report["result"]?["period"] == ours["period"])
        #expect(report["decisions"]?.arrayValue?.first?["rule"] == "hub-owns-period")
    }
}
