import Foundation

// `caresync-bench AREA…`: runs the benchmarks of each named area (all when none is named) and prints
// one `BENCH {json}` line per scenario; `Benchmarks/run` collects them into the report.
// `caresync-bench --list` prints the area names.

/// Every benchmark area by name, in run order.
let areas: [(name: String, run: () async throws -> Void)] = [
    ("merge", { MergeBench.run() }),
    ("validate", { ValidateBench.run() }),
    ("queue", { try await QueueBench.run() }),
    ("cli", { try await CLIBench.run() }),
    ("http", { try await HTTPBench.run() }),
]

let requested = Array(CommandLine.arguments.dropFirst())
if requested == ["--list"] {
    print(areas.map(\.name).joined(separator: "\n"))
    exit(0)
}
for name in requested where !areas.contains(where: { $0.name == name }) {
    FileHandle.standardError.write(
        Data("unknown benchmark area '\(name)'; known: \(areas.map(\.name).joined(separator: ", "))\n".utf8)
    )
    exit(2)
}
for area in areas where requested.isEmpty || requested.contains(area.name) {
    try await area.run()
}
