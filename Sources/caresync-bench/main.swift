// `caresync-bench AREA…`: runs the benchmarks of each named area (all when none is named) and prints
// one `BENCH {json}` line per scenario; `Benchmarks/run` collects them into the report.
import Foundation

let areas: [(name: String, run: () async throws -> Void)] = [
    ("queue", QueueBench.run)
]
let requested = Set(CommandLine.arguments.dropFirst())
for unknown in requested.subtracting(areas.map(\.name)) {
    FileHandle.standardError.write(Data("unknown benchmark area '\(unknown)'; known: \(areas.map(\.name).joined(separator: ", "))\n".utf8))
    exit(2)
}
for area in areas where requested.isEmpty || requested.contains(area.name) {
    try await area.run()
}
