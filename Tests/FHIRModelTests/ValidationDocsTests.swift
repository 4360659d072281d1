import CaresyncTestSupport
import FHIRModel
import Foundation
import Testing

@Suite("docs/validation.md")
struct ValidationDocsTests {
    @Test("the code table lists every validation code, and no code that does not exist")
    func everyCodeDocumented() throws {
        let url = TestPaths.repositoryRoot.appendingPathComponent("docs/validation.md")
        let text = try String(contentsOf: url, encoding: .utf8)
        // Rows of the table under "## Codes" start with "| `code` |".
        let section = try #require(text.components(separatedBy: "\n## Codes\n").last?.components(separatedBy: "\n## ").first)
        let documented = Set(
            section.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("| `") else { return nil }
                return line.dropFirst(3).prefix { $0 != "`" }.description
            })
        let codes = Set(ValidationCode.allCases.map(\.rawValue))
        #expect(codes.subtracting(documented).isEmpty, "undocumented: \(codes.subtracting(documented).sorted())")
        #expect(documented.subtracting(codes).isEmpty, "documented but not a code: \(documented.subtracting(codes).sorted())")
    }
}
