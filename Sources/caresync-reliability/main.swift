import CaresyncReliability
import Foundation

// `caresync-reliability [--scale short|full] [--seed N] [--bin-dir DIR] [--work-dir DIR] [--keep] [--markdown FILE] [SCENARIO…]`
// runs the reliability scenarios (all when none is named) against the built `caresync` and
// `caresync-store` (beside this executable unless --bin-dir says otherwise), prints one table
// (scenario, trials, lost, duplicated, errors as documented) and ends with `N passed, N failed`.
// Exit status 0 when every scenario passed, 1 otherwise, 2 on a usage error. docs/reliability.md.

func usage(_ problem: String) -> Never {
    FileHandle.standardError.write(Data("caresync-reliability: \(problem)\n".utf8))
    FileHandle.standardError.write(
        Data(
            "usage: caresync-reliability [--scale short|full] [--seed N] [--bin-dir DIR] [--work-dir DIR] [--keep] [--markdown FILE] [SCENARIO…]\nscenarios: \(ReliabilityScenario.allCases.map(\.rawValue).joined(separator: ", "))\n"
                .utf8))
    exit(2)
}

var scale = ReliabilityScale.full
var seed = UInt64(Date().timeIntervalSince1970)
var binDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
var workDirectory = NSTemporaryDirectory()
var keep = false
var markdownPath: String?
var scenarios: [ReliabilityScenario] = []
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    func value() -> String {
        guard let value = arguments.next() else { usage("\(argument) needs a value") }
        return value
    }
    switch argument {
    case "--scale":
        guard let parsed = ReliabilityScale(rawValue: value()) else { usage("--scale is short or full") }
        scale = parsed
    case "--seed":
        guard let parsed = UInt64(value()) else { usage("--seed is a whole number") }
        seed = parsed
    case "--bin-dir": binDirectory = URL(fileURLWithPath: value())
    case "--work-dir": workDirectory = value()
    case "--keep": keep = true
    case "--markdown": markdownPath = value()
    case "--list":
        print(ReliabilityScenario.allCases.map(\.rawValue).joined(separator: "\n"))
        exit(0)
    case "-h", "--help": usage("help")
    default:
        guard let scenario = ReliabilityScenario(rawValue: argument) else { usage("unknown scenario '\(argument)'") }
        scenarios.append(scenario)
    }
}
if scenarios.isEmpty { scenarios = ReliabilityScenario.allCases }

let started = Date()
let environment = ReliabilityEnvironment(
    binDirectory: binDirectory, workDirectory: workDirectory, seed: seed, keepFiles: keep,
    log: { line in
        let elapsed = Int(Date().timeIntervalSince(started))
        FileHandle.standardError.write(Data("[\(elapsed / 60):\(String(format: "%02d", elapsed % 60))] \(line)\n".utf8))
    })
print("caresync-reliability: scale \(scale.rawValue), seed \(seed), products from \(binDirectory.path)")
var results: [ScenarioResult] = []
for scenario in scenarios {
    environment.log("== \(scenario.rawValue)")
    let result = await scenario.run(scale: scale, environment: environment)
    for note in result.notes { environment.log("   \(note)") }
    for problem in result.problems { environment.log("   PROBLEM: \(problem)") }
    if let skipped = result.skipped { environment.log("   SKIPPED: \(skipped)") }
    results.append(result)
}
print(ReliabilityReport.table(results))
if let markdownPath {
    let machine = "\(ProcessInfo.processInfo.activeProcessorCount) cores, load \(String(format: "%.1f", loadAverage()))"
    let text = "Reliability run \(ISO8601DateFormatter().string(from: started)), scale \(scale.rawValue), seed \(seed), \(machine).\n\n"
        + ReliabilityReport.markdown(results) + "\n" + ReliabilityReport.summary(results) + "\n"
    try? text.write(toFile: markdownPath, atomically: true, encoding: .utf8)
}
print(ReliabilityReport.summary(results))
exit(results.contains(where: \.failed) ? 1 : 0)

func loadAverage() -> Double {
    var loads = [0.0, 0.0, 0.0]
    return getloadavg(&loads, 3) > 0 ? loads[0] : 0
}
