import FHIRJSON

/// One scenario's result, printed as a `BENCH {json}` line (the protocol of `Benchmarks/README.md`) by
/// every Swift area, so that `Benchmarks/run` reads the same fields, rounded the same way, from all of them.
///
/// `value` is caresync's figure and `baseline` the baseline's figure measured in the same run. `ratio` is
/// `value / baseline` unless the scenario gives its own (a cost compared as `baseline / value`, say); the
/// `target` text says which, and `met` whether DESIGN §10's target holds.
struct BenchResult {
    var area: String
    var scenario: String
    var unit: String
    var value: Double
    var baselineName: String
    var baseline: Double
    var ratio: Double?
    var target: String
    var met: Bool

    init(
        area: String, scenario: String, unit: String, value: Double, baselineName: String, baseline: Double,
        ratio: Double? = nil, target: String, met: Bool
    ) {
        self.area = area
        self.scenario = scenario
        self.unit = unit
        self.value = value
        self.baselineName = baselineName
        self.baseline = baseline
        self.ratio = ratio
        self.target = target
        self.met = met
    }

    /// `ratio` as given, else `value / baseline` (`nil` when the baseline is zero).
    var effectiveRatio: Double? {
        if let ratio { return ratio }
        return baseline == 0 ? nil : value / baseline
    }

    /// The JSON object of the line.
    var json: JSON {
        [
            "area": .string(area), "scenario": .string(scenario), "unit": .string(unit),
            "value": Self.number(value), "baseline_name": .string(baselineName), "baseline": Self.number(baseline),
            "ratio": effectiveRatio.map { Self.number($0, decimals: 3) } ?? .null, "target": .string(target), "met": .bool(met),
        ]
    }

    /// Prints the `BENCH` line to stdout.
    func emit() {
        print("BENCH " + json.text())
    }

    /// A JSON number rounded for people: whole numbers from 1,000 up, else three significant decimals
    /// (at most `decimals`).
    static func number(_ value: Double, decimals: Int = 3) -> JSON {
        guard value.isFinite else { return .null }
        if abs(value) >= 1000 { return .number(JSONNumber(Int(value.rounded()))) }
        var places = 2
        var magnitude = abs(value)
        while magnitude >= 10, places > 0 {
            magnitude /= 10
            places -= 1
        }
        while magnitude < 1, magnitude > 0, places < decimals {
            magnitude *= 10
            places += 1
        }
        places = min(places, decimals)
        return .number(JSONNumber(decimalText(value, places: places))!)
    }

    /// `value` with `places` decimals, written without Foundation.
    static func decimalText(_ value: Double, places: Int) -> String {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = Int((abs(value) * scale).rounded())
        let sign = value < 0 && scaled != 0 ? "-" : ""
        guard places > 0 else { return sign + String(scaled) }
        let divisor = Int(scale)
        var fraction = String(scaled % divisor)
        while fraction.count < places { fraction = "0" + fraction }
        return "\(sign)\(scaled / divisor).\(fraction)"
    }
}
