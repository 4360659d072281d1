import Foundation

// `caresync-bench AREA…`: runs the benchmarks of each named area (all when none is named) and prints
// one `BENCH {json}` line per scenario; `Benchmarks/run` collects them into the report.

/// Every benchmark area by name.
let areas: [String: () async throws -> Void] = [
    "http": HTTPBench.run
]

let requested = Array(CommandLine.arguments.dropFirst())
for name in requested.isEmpty ? areas.keys.sorted() : requested {
    guard let run = areas[name] else {
        FileHandle.standardError.write(Data("unknown benchmark area '\(name)'; known: \(areas.keys.sorted().joined(separator: ", "))\n".utf8))
        exit(2)
    }
    try await run()
}
