import FHIRJSON
import FHIRModel
import Foundation

/// How text output looks: colour only on a terminal, and never with `NO_COLOR` set (any value) or
/// `TERM=dumb` (https://no-color.org).
struct TextStyle {
    let colour: Bool

    /// The style for standard output (`fd` 1) in this environment.
    static func standardOutput(environment: [String: String] = ProcessInfo.processInfo.environment) -> TextStyle {
        TextStyle(colour: isatty(1) == 1 && environment["NO_COLOR"] == nil && environment["TERM"] != "dumb")
    }

    /// Whether standard output is a terminal (progress bars, not lines).
    static var standardOutputIsTerminal: Bool { isatty(1) == 1 }

    enum Colour: String {
        case red = "31"
        case green = "32"
        case yellow = "33"
        case blue = "34"
        case magenta = "35"
        case cyan = "36"
        case dim = "2"
        case bold = "1"
    }

    func paint(_ text: String, _ colour: Colour) -> String {
        guard self.colour, !text.isEmpty else { return text }
        return "\u{1B}[\(colour.rawValue)m\(text)\u{1B}[0m"
    }
}

/// Columns aligned on their widest cell (colour codes do not count); the last column is not padded.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []
    /// Columns aligned to the right (numbers).
    var rightAligned: Set<Int> = []

    init(_ header: [String], rightAligned: Set<Int> = []) {
        self.header = header
        self.rightAligned = rightAligned
    }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render(style: TextStyle) -> String {
        let all = [header] + rows
        let columns = header.count
        var widths = [Int](repeating: 0, count: columns)
        for row in all {
            for (index, cell) in row.enumerated() where index < columns {
                widths[index] = max(widths[index], Self.visibleWidth(cell))
            }
        }
        var out = ""
        for (rowIndex, row) in all.enumerated() {
            var line = ""
            for index in 0..<columns {
                let cell = index < row.count ? row[index] : ""
                let padding = String(repeating: " ", count: widths[index] - Self.visibleWidth(cell))
                let shown = rowIndex == 0 ? style.paint(cell, .bold) : cell
                if index > 0 { line += "  " }
                if rightAligned.contains(index) {
                    line += padding + shown
                } else if index == columns - 1 {
                    line += shown
                } else {
                    line += shown + padding
                }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        return out
    }

    /// Characters shown, ANSI escape sequences left out.
    static func visibleWidth(_ text: String) -> Int {
        var width = 0
        var inEscape = false
        for scalar in text.unicodeScalars {
            if inEscape {
                if scalar == "m" { inEscape = false }
            } else if scalar == "\u{1B}" {
                inEscape = true
            } else {
                width += 1
            }
        }
        return width
    }
}

/// Times and durations as operators read them.
enum Format {
    /// `2025-06-15T09:30:00Z` (UTC, whole seconds).
    static func time(_ milliseconds: Int64) -> String {
        let text = FHIRInstant(millisecondsSinceEpoch: milliseconds).text
        // FHIRInstant writes `.sssZ`; whole seconds read better in a table.
        if let dot = text.firstIndex(of: "."), text.hasSuffix("Z") {
            return String(text[..<dot]) + "Z"
        }
        return text
    }

    /// The instant in JSON: FHIR instant text in UTC with milliseconds.
    static func instant(_ milliseconds: Int64) -> String {
        FHIRInstant(millisecondsSinceEpoch: milliseconds).text
    }

    /// `0s`, `45s`, `3m12s`, `15m`, `2h05m`, `2h`, `3d04h`: two units at most, a zero second unit left out.
    static func duration(milliseconds: Int64) -> String {
        let seconds = max(0, milliseconds / 1000)
        func join(_ major: Int64, _ majorUnit: String, _ minor: Int64, _ minorUnit: String) -> String {
            "\(major)\(majorUnit)" + (minor == 0 ? "" : pad(minor) + minorUnit)
        }
        if seconds < 60 { return "\(seconds)s" }
        let minutes = seconds / 60
        if minutes < 60 { return join(minutes, "m", seconds % 60, "s") }
        let hours = minutes / 60
        if hours < 24 { return join(hours, "h", minutes % 60, "m") }
        return join(hours / 24, "d", hours % 24, "h")
    }

    /// `1,234,567`.
    static func count(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// `1 conflict`, `2 conflicts`.
    static func plural(_ value: Int, _ noun: String, _ plural: String? = nil) -> String {
        "\(count(value)) \(value == 1 ? noun : plural ?? noun + "s")"
    }

    /// Text shortened to `limit` characters with an ellipsis.
    static func shortened(_ text: String, _ limit: Int) -> String {
        let single = text.replacingOccurrences(of: "\n", with: " ")
        return single.count <= limit ? single : String(single.prefix(limit - 1)) + "…"
    }

    private static func pad(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
}

/// The current time in milliseconds since the epoch (the state store's own clock).
func nowMilliseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
}

extension JSON {
    /// An integer.
    static func integer(_ value: some BinaryInteger) -> JSON {
        .number(JSONNumber(String(value))!)
    }

    /// Milliseconds as seconds with three decimals (`12.345`).
    static func seconds(milliseconds: Int64) -> JSON {
        let sign = milliseconds < 0 ? "-" : ""
        let magnitude = milliseconds.magnitude
        let fraction = String(magnitude % 1000)
        return .number(JSONNumber("\(sign)\(magnitude / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)")!)
    }

    /// A string, or `null`.
    static func optional(_ value: String?) -> JSON {
        value.map(JSON.string) ?? .null
    }

    /// An instant in UTC (`2025-06-15T09:30:00.000Z`), or `null`.
    static func instant(_ milliseconds: Int64?) -> JSON {
        milliseconds.map { .string(Format.instant($0)) } ?? .null
    }
}
