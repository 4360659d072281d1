public import Foundation

/// Where the things tests use live: built products, the repository, the shared fixtures.
public enum TestPaths {
    /// The repository root (two levels above this file's folder).
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared/fixtures` beside the repository; `nil` where shared/ is absent (a clone elsewhere).
    public static var sharedFixtures: URL? {
        let url = repositoryRoot.appendingPathComponent("../shared/fixtures").standardizedFileURL
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// A built executable product of this package (`caresync`, `caresync-store`, …), found beside the
    /// running test bundle, where `swift build --build-tests` puts every product.
    public static func product(_ name: String) throws -> URL {
        var candidates: [URL] = []
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(directory.appendingPathComponent(name))
            directory = directory.deletingLastPathComponent()
        }
        for configuration in ["debug", "release"] {
            candidates.append(repositoryRoot.appendingPathComponent(".build/\(configuration)/\(name)"))
        }
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) {
            return found
        }
        throw TestPathError.productNotBuilt(name: name, searched: candidates.map(\.path))
    }
}

/// A missing prerequisite of a test.
public enum TestPathError: Error, CustomStringConvertible {
    case productNotBuilt(name: String, searched: [String])

    public var description: String {
        switch self {
        case .productNotBuilt(let name, let searched):
            "product \(name) is not built (run `swift build`); looked in:\n" + searched.joined(separator: "\n")
        }
    }
}

/// A fresh directory under the system temporary directory, removed by ``remove()``.
public struct TemporaryDirectory: Sendable {
    public let url: URL

    public init(prefix: String = "caresync-test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// A path inside the directory.
    public func path(_ name: String) -> URL { url.appendingPathComponent(name) }

    public func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}
