@testable import FHIRModel
import CaresyncTestSupport
import FHIRJSON
import Foundation
import Testing

/// Cross-checks the hand-written R4 element tables against an independent source: the fhirclient Python
/// models, generated from the FHIR 4.0.1 definitions (`Tests/Oracles/r4_element_tables.py`). The tables are
/// internal data, so this one suite reads them with `@testable`; behaviour is tested through the public API
/// elsewhere.
@Suite("R4 element tables against the fhirclient models")
struct ElementTableOracleTests {
    /// Every structure reachable from the four resources and the datatype table, by name.
    static func allStructures() -> [String: StructureDefinition] {
        var found: [String: StructureDefinition] = [:]
        func visit(_ structure: StructureDefinition) {
            guard found[structure.name] == nil else { return }
            found[structure.name] = structure
            for property in structure.properties.values {
                if case .backbone(let child) = property.type { visit(child) }
            }
        }
        ResourceType.allCases.map(R4Resources.structure(for:)).forEach(visit)
        R4Datatypes.all.values.forEach(visit)
        return found
    }

    /// The tables as the oracle script reads them.
    static func tablesJSON() -> JSON {
        var tables = JSONObject()
        for (name, structure) in allStructures().sorted(by: { $0.key < $1.key }) {
            let elements: [JSON] = structure.properties.sorted(by: { $0.key < $1.key }).map { jsonName, property in
                let type: String =
                    switch property.type {
                    case .fhir(let type): type.rawValue
                    case .backbone(let child): child.name
                    }
                let choice: JSON = if case .choice = property.element.content { .string(property.element.name) } else { .null }
                return [
                    "json": .string(jsonName), "min": .number(JSONNumber(property.element.cardinality.min)),
                    "repeats": .bool(property.element.cardinality.repeats), "type": .string(type), "choice": choice,
                ]
            }
            tables[name] = .array(elements)
        }
        return .object(tables)
    }

    @Test("every table agrees with FHIR 4.0.1: names, cardinality, choice groups and types")
    func tablesMatchFHIRClient() async throws {
        let script = TestPaths.repositoryRoot.appendingPathComponent("Tests/Oracles/r4_element_tables.py")
        let result = try await Tool.run("python3", [script.path], input: Data(Self.tablesJSON().serialized()))
        let text = result.output + result.errors
        if result.status == 3 {
            try #require(ProcessInfo.processInfo.environment["CI"] != "true", "fhirclient is missing in CI: \(text)")
            print("skipped: \(text)")
            return
        }
        #expect(result.status == 0, "\(text)")
        #expect(text.contains("compared 55 structures") && text.contains(": 0 differences"), "\(text)")
    }

    @Test("the tables cover the four resources and every datatype an Extension value can hold")
    func coverage() {
        let structures = Self.allStructures()
        #expect(structures.count == 55, "\(structures.keys.sorted())")
        let extensionValues = R4Datatypes.all[.Extension]!.properties.keys.filter { $0.hasPrefix("value") }
        #expect(extensionValues.count == 50)
        for type in FHIRType.allCases where !type.isPrimitive && type != .Resource {
            #expect(R4Datatypes.all[type] != nil, "no table for \(type.rawValue)")
        }
    }
}
