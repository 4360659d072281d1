public import ArgumentParser
import FHIRJSON
import FHIRModel
import Foundation

/// `caresync validate FILE… [--json] [--profile caresync|r4] [--require-server-metadata]`: validates FHIR
/// resources offline and prints, per file, "valid" or the list of issues (DESIGN §7, §9).
///
/// `--json` prints one JSON array with one object per file, in argument order:
/// `[{"file","valid":bool,"errors":[{"path","code","message"}]}]` (schema:
/// `Schemas/cli/validate.schema.json`). A file that cannot be read is invalid with the single error code
/// `file-unreadable` and an empty path. Exit status 0 when every file is valid, 2 otherwise.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Validate FHIR R4 resources (CarePlan, Encounter, RelatedPerson, Patient) offline.",
        discussion: """
            Prints, per file, "valid" or every issue found as path, code and message (codes are listed in \
            docs/validation.md). Exits 0 when every file is valid and 2 when any file is invalid or unreadable.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "FHIR JSON files to validate; '-' reads standard input.")
    var files: [String] = []

    @Flag(name: .long, help: "Print a JSON array with one {file, valid, errors} object per file.")
    var json = false

    @Option(
        name: .long,
        help: "caresync: R4 plus the sync rules (NHS number on the subject, usable identifiers); r4: R4 conformance."
    )
    var profile: ValidationProfile = .caresync

    @Flag(name: .long, help: "Also require id, meta.versionId and meta.lastUpdated, as a server's copy has them.")
    var requireServerMetadata = false

    /// One reported problem: a validation issue, or `file-unreadable` (a CLI code, not a validation rule).
    private struct Problem {
        let path: String
        let code: String
        let message: String

        init(path: String, code: String, message: String) {
            self.path = path
            self.code = code
            self.message = message
        }

        init(_ issue: ValidationIssue) {
            self.init(path: issue.path, code: issue.code.rawValue, message: issue.message)
        }
    }

    /// The outcome for one file.
    private struct FileResult {
        let file: String
        let issues: [Problem]
        var valid: Bool { issues.isEmpty }
    }

    func run() throws {
        guard !files.isEmpty else {
            FileHandle.standardError.write(Data("error: give at least one FILE to validate ('-' for standard input)\n".utf8))
            throw CaresyncExitCode.invalidInput.exitCode
        }
        let validator = ResourceValidator(profile: profile, requiresServerMetadata: requireServerMetadata)
        let results = files.map { validate($0, with: validator) }
        if json {
            print(Self.jsonReport(results).text(.pretty))
        } else {
            for result in results { print(Self.textReport(result), terminator: "") }
            if results.count > 1 {
                let validCount = results.filter(\.valid).count
                print("\(results.count) files: \(validCount) valid, \(results.count - validCount) invalid")
            }
        }
        if !results.allSatisfy(\.valid) {
            throw CaresyncExitCode.invalidInput.exitCode
        }
    }

    private func validate(_ file: String, with validator: ResourceValidator) -> FileResult {
        do {
            let bytes: [UInt8]
            if file == "-" {
                bytes = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
            } else {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
                    return unreadable(file, "no such file")
                }
                if isDirectory.boolValue { return unreadable(file, "it is a directory") }
                let size = (try FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.intValue ?? 0
                if let issue = validator.sizeIssue(byteCount: size) {
                    return FileResult(file: file, issues: [Problem(issue)])  // refused before reading it
                }
                bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
            }
            return FileResult(file: file, issues: validator.validate(bytes: bytes).issues.map(Problem.init))
        } catch {
            return unreadable(file, (error as NSError).localizedDescription)
        }
    }

    private func unreadable(_ file: String, _ reason: String) -> FileResult {
        FileResult(
            file: file,
            issues: [Problem(path: "", code: "file-unreadable", message: "The file cannot be read: \(reason).")]
        )
    }

    private static func textReport(_ result: FileResult) -> String {
        guard !result.valid else { return "\(result.file): valid\n" }
        let count = result.issues.count
        var text = "\(result.file): invalid, \(count) issue\(count == 1 ? "" : "s")\n"
        for issue in result.issues {
            text += "  \(issue.path.isEmpty ? "-" : issue.path)  [\(issue.code)]  \(issue.message)\n"
        }
        return text
    }

    private static func jsonReport(_ results: [FileResult]) -> JSON {
        .array(
            results.map { result in
                [
                    "file": .string(result.file),
                    "valid": .bool(result.valid),
                    "errors": .array(
                        result.issues.map { issue in
                            [
                                "path": .string(issue.path),
                                "code": .string(issue.code),
                                "message": .string(issue.message),
                            ]
                        }),
                ]
            })
    }
}

extension ValidationProfile: ExpressibleByArgument {}
