// `caresync-bench AREA…`: runs the benchmarks of each named area (all when none is named) and prints
// one `BENCH {json}` line per scenario; `Benchmarks/run` collects them into the report.

import Glibc

/// Every benchmark area, by name.
let areas: [(name: String, run: () -> Void)] = [
    ("merge", MergeBench.run)
]

let requested = Array(CommandLine.arguments.dropFirst())
for name in requested where !areas.contains(where: { $0.name == name }) {
    print("unknown benchmark area \"\(name)\"; areas: \(areas.map(\.name).joined(separator: ", "))")
    exit(2)
}
for area in areas where requested.isEmpty || requested.contains(area.name) {
    area.run()
}
