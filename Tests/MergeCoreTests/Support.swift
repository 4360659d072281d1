import CaresyncTestSupport
import FHIRJSON
import Foundation
import Testing

/// The published FHIR examples in `../shared/fixtures/fhir`, read in place.
enum Fixtures {
    /// The parsed fixture, or `nil` (after saying so) where shared/ is absent; absent fixtures fail under `CI=true`.
    static func load(_ relativePath: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON? {
        guard let root = TestPaths.sharedFixtures else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("../shared/fixtures is missing in CI", sourceLocation: sourceLocation)
            } else {
                print("skipped: ../shared/fixtures is absent here (a clone without shared/); \(relativePath) not read")
            }
            return nil
        }
        let url = root.appendingPathComponent("fhir").appendingPathComponent(relativePath)
        return try JSON.parse([UInt8](Data(contentsOf: url)))
    }
}

/// Runs Python's `jsonschema` (an independent validator) over a document.
enum PythonJSONSchema {
    /// `nil` when `instance` is valid against `schema`, else the validator's message.
    static func problems(instance: URL, schema: URL) async throws -> String? {
        let script = """
            import json, sys
            import jsonschema
            schema = json.load(open(sys.argv[1]))
            jsonschema.Draft202012Validator.check_schema(schema)
            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))), key=str)
            for error in errors:
                print("/".join(str(p) for p in error.absolute_path), error.message)
            sys.exit(1 if errors else 0)
            """
        let child = try ChildProcess(
            executable: URL(fileURLWithPath: "/usr/bin/env"), arguments: ["python3", "-c", script, schema.path, instance.path])
        let status = try await child.waitForExit()
        if status == 0 { return nil }
        return (child.output + child.errors).joined(separator: "\n")
    }
}

extension JSON {
    /// The value at a path of object members and list positions, e.g. `["activity", 0, "detail"]`.
    subscript(steps steps: [any PathStep]) -> JSON? {
        get {
            var current: JSON? = self
            for step in steps { current = current.flatMap(step.read) }
            return current
        }
        set {
            guard let first = steps.first else {
                if let newValue { self = newValue }
                return
            }
            var child = first.read(self) ?? [:]
            child[steps: Array(steps.dropFirst())] = newValue
            first.write(&self, steps.count == 1 ? newValue : child)
        }
    }
}

/// One step of a path into a JSON value: a member name or a list position.
protocol PathStep {
    func read(_ value: JSON) -> JSON?
    func write(_ value: inout JSON, _ newValue: JSON?)
}

extension String: PathStep {
    func read(_ value: JSON) -> JSON? { value[self] }
    func write(_ value: inout JSON, _ newValue: JSON?) { value[self] = newValue }
}

extension Int: PathStep {
    func read(_ value: JSON) -> JSON? {
        guard let elements = value.arrayValue, indices(elements) else { return nil }
        return elements[self]
    }

    func write(_ value: inout JSON, _ newValue: JSON?) {
        guard var elements = value.arrayValue, indices(elements) else { return }
        if let newValue { elements[self] = newValue } else { elements.remove(at: self) }
        value = .array(elements)
    }

    private func indices(_ elements: [JSON]) -> Bool { self >= 0 && self < elements.count }
}
