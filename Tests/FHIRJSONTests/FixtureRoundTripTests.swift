import FHIRJSON
import Foundation
import Testing

/// Round-trips the published FHIR examples in `../shared/fixtures` (third-party data, read in place).
@Suite("JSON round trip over the shared FHIR fixtures")
struct FixtureRoundTripTests {
    static let fixtureRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("../shared/fixtures/fhir").standardizedFileURL

    static var fixtureFiles: [URL] {
        guard let enumerator = FileManager.default.enumerator(at: fixtureRoot, includingPropertiesForKeys: nil) else {
            return []
        }
        return enumerator.compactMap { $0 as? URL }.filter { $0.pathExtension == "json" }.sorted { $0.path < $1.path }
    }

    @Test("every fixture parses, serialises and parses back to the same value")
    func roundTrip() throws {
        let files = Self.fixtureFiles
        try #require(!files.isEmpty || ProcessInfo.processInfo.environment["CI"] == nil, "fixtures missing in CI")
        guard !files.isEmpty else {
            print("skipped: ../shared/fixtures is absent here (a fresh clone without shared/)")
            return
        }
        for file in files {
            let bytes = try [UInt8](Data(contentsOf: file))
            let value = try JSON.parse(bytes)
            let compact = value.serialized()
            #expect(try JSON.parse(compact) == value, "\(file.lastPathComponent)")
            #expect(try JSON.parse(value.serialized(.canonical)).canonicalBytes == value.canonicalBytes)
            // Compact output of compact input is byte-identical: nothing is reformatted.
            #expect(try JSON.parse(compact).serialized() == compact, "\(file.lastPathComponent)")
        }
    }
}
