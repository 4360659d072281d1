import ArgumentParser
import FHIRJSON
import Foundation
import MergeCore

/// `caresync merge`: an offline dry run of the merge of three versions of one resource (DESIGN §7).
///
/// Exit codes: 0 merged, 3 conflicts, 4 refused by a safety rule, 2 invalid input (an unreadable file, a
/// file that is not JSON, a bad policy).
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge three versions of one FHIR resource offline and show the decisions and conflicts.",
        discussion: """
            Exit status: 0 merged, 3 conflicts (the result keeps ours at those paths), 4 refused by a safety \
            rule, 2 invalid input. Without --base the merge is two-way: everything that differs is a conflict \
            unless a rule says otherwise.
            """
    )

    @Option(name: .long, help: "The common ancestor (the last version synchronised); omit for a two-way merge.")
    var base: String?

    @Option(name: .long, help: "The hub's current version (required).")
    var ours: String?

    @Option(name: .long, help: "The provider's new version (required).")
    var theirs: String?

    @Option(name: .long, help: "A merge policy file (default: the embedded reviewed policy).")
    var policy: String?

    @Option(name: .long, help: "The side the record originated from (ours or theirs), for authority rules.")
    var origin: String?

    @Flag(name: .long, help: "Print the outcome as one JSON object (Schemas/cli/merge.schema.json).")
    var json = false

    func run() throws {
        let outcome: MergeOutcome
        do {
            outcome = try runMerge()
        } catch {
            FileHandle.standardError.write(Data("caresync merge: \(error.message)\n".utf8))
            throw CaresyncExitCode.invalidInput.exitCode
        }
        if json {
            print(MergeReport.json(outcome).text())
        } else {
            print(MergeReport.summary(outcome), terminator: "")
        }
        switch outcome.status {
        case .merged: return
        case .conflict: throw CaresyncExitCode.conflicts.exitCode
        case .refused: throw CaresyncExitCode.refused.exitCode
        }
    }

    private func runMerge() throws(InputProblem) -> MergeOutcome {
        guard let ours else { throw InputProblem(message: "--ours FILE is required (the hub's current version)") }
        guard let theirs else { throw InputProblem(message: "--theirs FILE is required (the provider's new version)") }
        let context: MergeContext
        switch origin {
        case nil: context = MergeContext()
        case "ours"?: context = MergeContext(origin: .ours)
        case "theirs"?: context = MergeContext(origin: .theirs)
        case let other?: throw InputProblem(message: "--origin is ours or theirs, not \"\(other)\"")
        }
        let mergePolicy: MergePolicy
        if let policy {
            let bytes = try Self.read(policy, option: "--policy")
            do {
                mergePolicy = try MergePolicy(bytes: bytes)
            } catch {
                throw InputProblem(message: "--policy \(policy): \(error.description)")
            }
        } else {
            mergePolicy = MergePolicy.default
        }
        let baseValue = try base.map { (path) throws(InputProblem) in try Self.resource(path, option: "--base") }
        let oursValue = try Self.resource(ours, option: "--ours")
        let theirsValue = try Self.resource(theirs, option: "--theirs")
        return merge(base: baseValue, ours: oursValue, theirs: theirsValue, policy: mergePolicy, context: context)
    }

    private static func resource(_ path: String, option: String) throws(InputProblem) -> JSON {
        let bytes = try read(path, option: option)
        let value: JSON
        do {
            value = try JSON.parse(bytes)
        } catch {
            throw InputProblem(message: "\(option) \(path): not valid JSON: \(error.description)")
        }
        guard value["resourceType"]?.stringValue != nil else {
            throw InputProblem(message: "\(option) \(path): not a FHIR resource (a JSON object with a resourceType)")
        }
        return value
    }

    private static func read(_ path: String, option: String) throws(InputProblem) -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw InputProblem(message: "\(option) \(path): no such file")
        }
        guard !isDirectory.boolValue else { throw InputProblem(message: "\(option) \(path): is a directory, not a file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InputProblem(message: "\(option) \(path): cannot be read (permission denied?)")
        }
        return [UInt8](data)
    }
}

/// A reason the command cannot run: one line naming the option, the file and the problem.
private struct InputProblem: Error {
    let message: String
}

/// The two renderings of a merge outcome.
enum MergeReport {
    /// `{"status","result","decisions":[{"path","rule","took","explanation"}],"conflicts":[{"path","rule","hazard",
    /// "message","base","ours","theirs"}],"errors":[{"code","message","rule"}]}`; absent values are `null`.
    static func json(_ outcome: MergeOutcome) -> JSON {
        let decisions: [JSON] = outcome.decisions.map { decision in
            var object: JSON = [
                "path": .string(decision.path), "rule": .string(decision.rule), "took": .string(decision.took.rawValue),
                "explanation": .string(decision.explanation),
            ]
            if let discarded = decision.discarded { object["discarded"] = discarded }
            return object
        }
        let conflicts: [JSON] = outcome.conflicts.map { conflict in
            [
                "path": .string(conflict.path), "rule": .string(conflict.rule), "hazard": .string(conflict.hazard),
                "message": .string(conflict.message), "base": conflict.base ?? .null, "ours": conflict.ours ?? .null,
                "theirs": conflict.theirs ?? .null,
            ]
        }
        let errors: [JSON] = outcome.errors.map { error in
            ["code": .string(error.code.rawValue), "message": .string(error.message), "rule": error.rule.map(JSON.string) ?? .null]
        }
        return [
            "status": .string(outcome.status.rawValue), "result": outcome.result ?? .null, "decisions": .array(decisions),
            "conflicts": .array(conflicts), "errors": .array(errors),
        ]
    }

    /// A readable summary: the status, each conflict with its three values, each decision, then the merged resource.
    static func summary(_ outcome: MergeOutcome) -> String {
        var out = ""
        switch outcome.status {
        case .merged:
            out += "merged: \(count(outcome.decisions.count, "automatic decision"))\n"
        case .conflict:
            out += "conflict: \(count(outcome.conflicts.count, "path")) held for review, \(count(outcome.decisions.count, "automatic decision"))\n"
        case .refused:
            out += "refused: no merge was made\n"
            for error in outcome.errors {
                out += "  \(error.message) [\(error.rule ?? error.code.rawValue)]\n"
            }
            return out
        }
        if !outcome.conflicts.isEmpty {
            out += "\nconflicts (the result keeps ours):\n"
            for conflict in outcome.conflicts {
                out += "  \(conflict.path)  [\(conflict.rule)] \(conflict.message)\n"
                out += "    hazard: \(conflict.hazard)\n"
                out += "    base:   \(show(conflict.base))\n"
                out += "    ours:   \(show(conflict.ours))\n"
                out += "    theirs: \(show(conflict.theirs))\n"
            }
        }
        if !outcome.decisions.isEmpty {
            out += "\ndecisions:\n"
            for decision in outcome.decisions {
                out += "  \(decision.path)  took \(decision.took.rawValue) [\(decision.rule)] \(decision.explanation)\n"
            }
        }
        out += "\nmerged resource:\n"
        if let result = outcome.result {
            out += result.text(.pretty) + "\n"
        } else {
            out += "(none: the record is deleted)\n"
        }
        return out
    }

    private static func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }

    private static func show(_ value: JSON?) -> String {
        guard let value else { return "(absent)" }
        let text = value.text()
        return text.count <= 200 ? text : String(text.prefix(199)) + "…"
    }
}
