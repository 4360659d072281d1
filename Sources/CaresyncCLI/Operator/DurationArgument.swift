import ArgumentParser

/// A duration on the command line: `90s`, `15m`, `2h`, `7d` (or a bare number of seconds).
struct DurationArgument: ExpressibleByArgument, Sendable, Hashable, CustomStringConvertible {
    let milliseconds: Int64

    init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    init?(argument: String) {
        guard let value = Self.parse(argument) else { return nil }
        milliseconds = value
    }

    /// Milliseconds for `text`, or `nil` when it is not a duration.
    static func parse(_ text: String) -> Int64? {
        let units: [(suffix: String, milliseconds: Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        let unit = units.first { text.hasSuffix($0.suffix) && text.dropLast($0.suffix.count).allSatisfy(\.isNumber) }
        let number = unit.map { String(text.dropLast($0.suffix.count)) } ?? text
        guard !number.isEmpty, number.count <= 9, number.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int64(number) else {
            return nil
        }
        return value * (unit?.milliseconds ?? 1000)
    }

    var description: String { Format.duration(milliseconds: milliseconds) }

    static var defaultCompletionKind: CompletionKind { .default }
}
