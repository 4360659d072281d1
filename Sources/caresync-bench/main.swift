// `caresync-bench AREA…`: runs the benchmarks of each named area (all when none is named) and prints
// one `BENCH {json}` line per scenario; `Benchmarks/run` collects them into the report.
// `caresync-bench --list` prints the area names.
let areas: [(name: String, run: () -> Void)] = [
    ("validate", ValidateBench.run)
]
let requested = Array(CommandLine.arguments.dropFirst())
if requested == ["--list"] {
    print(areas.map(\.name).joined(separator: "\n"))
} else {
    for name in requested where !areas.contains(where: { $0.name == name }) {
        print("unknown benchmark area \(name); known: \(areas.map(\.name).joined(separator: ", "))")
    }
    for area in areas where requested.isEmpty || requested.contains(area.name) {
        area.run()
    }
}
