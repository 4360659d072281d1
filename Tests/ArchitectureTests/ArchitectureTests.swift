import CaresyncTestSupport
import Foundation
import Testing

/// The architecture rules of DESIGN §1 and docs/architecture.md, checked on the source tree and the
/// built binary rather than trusted.
@Suite("Architecture rules")
struct ArchitectureTests {
    static let sources = TestPaths.repositoryRoot.appendingPathComponent("Sources")

    /// Every Swift file under `Sources/<module>`.
    static func swiftFiles(in module: String? = nil) throws -> [URL] {
        let root = module.map { sources.appendingPathComponent($0) } ?? sources
        let enumerator = try #require(FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil))
        return enumerator.compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
    }

    @Test("nothing uses URLSession or FoundationNetworking: HTTP goes through the libcurl transport")
    func noFoundationNetworking() throws {
        let files = try Self.swiftFiles()
        #expect(files.count > 50)
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(!text.contains("FoundationNetworking"), "\(file.path)")
            #expect(!text.contains("URLSession"), "\(file.path)")
        }
    }

    /// Each pure module and the modules it may import.
    static let pureModules: [(module: String, allowed: Set<String>)] = [
        ("FHIRJSON", []),
        ("FHIRModel", ["FHIRJSON"]),
        ("MergeCore", ["FHIRJSON", "FHIRModel"]),
    ]

    @Test("the pure core imports nothing but itself: no Foundation, no I/O", arguments: pureModules)
    func pureCore(module: String, allowed: Set<String>) throws {
        for file in try Self.swiftFiles(in: module) {
            let text = try String(contentsOf: file, encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                guard let importIndex = words.firstIndex(of: "import"), importIndex <= 1, importIndex + 1 < words.count
                else { continue }
                let imported = String(words[importIndex + 1])
                #expect(allowed.contains(imported), "\(module) imports \(imported) in \(file.lastPathComponent)")
            }
        }
    }

    @Test("the caresync binary links neither Hummingbird nor SwiftNIO (only caresync-store does)")
    func caresyncLinksNoServerStack() async throws {
        let binary = try TestPaths.product("caresync")
        let store = try TestPaths.product("caresync-store")
        func symbols(_ url: URL) async throws -> String {
            try await Tool.output("nm", [url.path])
        }
        // Swift mangles a module name as its length and text, e.g. `7NIOCore`, `11Hummingbird`.
        let storeSymbols = try await symbols(store)
        #expect(storeSymbols.contains("7NIOCore"), "the check itself must see NIO where it is linked")
        let caresyncSymbols = try await symbols(binary)
        #expect(caresyncSymbols.contains("12CaresyncHTTP"))
        #expect(!caresyncSymbols.contains("7NIOCore"))
        #expect(!caresyncSymbols.contains("11Hummingbird"))
    }
}
