import CaresyncTestSupport
import FHIRJSON
import Foundation
import MergeCore
import Testing

@Suite("Merge policy file")
struct MergePolicyTests {
    static let policyFile = TestPaths.repositoryRoot.appendingPathComponent("Schemas/merge-policy.json")
    static let schemaFile = TestPaths.repositoryRoot.appendingPathComponent("Schemas/merge-policy.schema.json")

    @Test("the embedded default is byte for byte Schemas/merge-policy.json")
    func embeddedDefaultIsTheFile() throws {
        let file = try [UInt8](Data(contentsOf: Self.policyFile))
        #expect(MergePolicy.defaultPolicyBytes == file)
    }

    @Test("the default policy validates against its JSON Schema with Python jsonschema")
    func defaultValidatesAgainstSchema() async throws {
        let problems = try await PythonJSONSchema.problems(instance: Self.policyFile, schema: Self.schemaFile)
        #expect(problems == nil)
    }

    @Test("the schema rejects what the loader rejects: an unknown strategy, a missing hazard, keys on a set rule")
    func schemaRejectsBadPolicies() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for (name, edit) in Self.badEdits where ["unknown-strategy", "missing-hazard", "misplaced-option", "unknown-field"].contains(name) {
            var policy = try JSON.parse([UInt8](Data(contentsOf: Self.policyFile)))
            edit(&policy)
            let file = directory.path("\(name).json")
            try Data(policy.serialized()).write(to: file)
            let problems = try await PythonJSONSchema.problems(instance: file, schema: Self.schemaFile)
            #expect(problems != nil, "the schema accepted a policy with \(name)")
        }
    }

    @Test("the default covers CarePlan, Encounter and RelatedPerson, every rule with a unique id, a hazard and a rationale")
    func defaultPolicyShape() {
        let policy = MergePolicy.default
        #expect(policy.defaultRule.id == "default-three-way")
        #expect(Set(policy.rules.map { String($0.path.prefix { $0 != "." }) }) == ["CarePlan", "Encounter", "RelatedPerson"])
        #expect(Set(policy.rules.map(\.id)).count == policy.rules.count)
        #expect(policy.rules.allSatisfy { !$0.hazard.isEmpty && !$0.rationale.isEmpty })
        let strategies = Set(policy.rules.map(\.strategy.name))
        #expect(strategies == ["three-way", "keyed-list", "set", "append-only", "status-machine", "authority", "never-auto"])
        #expect(policy.rule(id: "careplan-activity")?.strategy == .keyedList(keys: [["id"], ["reference.reference"], ["detail.code", "detail.scheduled[x]"], ["detail.code"]]))
        #expect(policy.rule(id: "encounter-period")?.strategy == .authority(owner: .origin))
    }

    @Test("docs/clinical-safety.md has a row for every rule of the default policy and every safety rule")
    func clinicalSafetyTableIsComplete() throws {
        let page = try String(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("docs/clinical-safety.md"), encoding: .utf8)
        let rows = page.split(separator: "\n").filter { $0.hasPrefix("| `") }
        let policy = MergePolicy.default
        for id in [policy.defaultRule.id] + policy.rules.map(\.id) + SafetyRules.all.map(\.id) {
            #expect(rows.contains { $0.hasPrefix("| `\(id)` |") }, "no row for \(id)")
        }
        for rule in policy.rules {
            #expect(rows.contains { $0.hasPrefix("| `\(rule.id)` |") && $0.contains(rule.hazard) }, "the row for \(rule.id) does not quote its hazard")
        }
    }

    typealias Edit = @Sendable (inout JSON) -> Void

    /// One broken policy per error: what is changed in the default file.
    static let badEdits: [(String, Edit)] = [
        ("unknown-strategy", { $0[steps: ["rules", 1, "strategy"]] = "last-writer-wins" }),
        ("unknown-resource-type", { $0[steps: ["rules", 0, "path"]] = "Observation.identifier" }),
        ("bad-path", { $0[steps: ["rules", 0, "path"]] = "CarePlan..identifier" }),
        ("missing-hazard", { $0[steps: ["rules", 2, "hazard"]] = nil }),
        ("duplicate-rule-id", { $0[steps: ["rules", 3, "id"]] = "careplan-identifier" }),
        ("duplicate-path", { $0[steps: ["rules", 3, "path"]] = "CarePlan.identifier" }),
        ("bad-keys", { $0[steps: ["rules", 0, "keys"]] = [[]] }),
        ("bad-order", { $0[steps: ["rules", 1, "order"]] = [["draft"], ["draft", "active"]] }),
        ("bad-owner", { $0[steps: ["rules", 20, "owner"]] = "whoever-was-last" }),
        ("misplaced-option", { $0[steps: ["rules", 4, "keys"]] = [["coding"]] }),
        ("unknown-field", { $0[steps: ["rules", 4, "hazzard"]] = "typo" }),
        ("missing-field", { $0["policyVersion"] = nil }),
    ]

    @Test("a broken policy is rejected with a typed error naming the rule and the field", arguments: badEdits.map(\.0))
    func brokenPolicyIsRejected(_ code: String) throws {
        var policy = try JSON.parse([UInt8](Data(contentsOf: Self.policyFile)))
        let edit = try #require(Self.badEdits.first { $0.0 == code }?.1)
        edit(&policy)
        let error = try #require(throws: MergePolicyError.self) { try MergePolicy(bytes: policy.serialized()) }
        #expect(error.code.rawValue == code, "\(error)")
        if code != "missing-field" {
            #expect(error.ruleID != nil, "\(error)")
            #expect(error.field != nil, "\(error)")
        }
        #expect(!error.message.isEmpty)
    }

    @Test("a rule path with an unknown resource type names the rule's id in the error text")
    func errorTextNamesTheRule() throws {
        var policy = try JSON.parse([UInt8](Data(contentsOf: Self.policyFile)))
        policy[steps: ["rules", 0, "path"]] = "Observation.identifier"
        let error = try #require(throws: MergePolicyError.self) { try MergePolicy(bytes: policy.serialized()) }
        #expect(error.description.hasPrefix("rule careplan-identifier, field path: unknown resource type \"Observation\""))
    }

    @Test("bytes that are not JSON are rejected as not-json")
    func notJSON() throws {
        let error = try #require(throws: MergePolicyError.self) { try MergePolicy(bytes: Array("{\"rules\": [".utf8)) }
        #expect(error.code == .notJSON)
    }
}
