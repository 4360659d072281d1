public import Foundation
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How log lines are written.
public enum LogFormat: Sendable, Equatable {
    /// For journald: `<6>label: message key=value`, the syslog priority as a prefix, no timestamp (the
    /// journal stamps each line), one line per event.
    case journal
    /// For a terminal or a file: `2026-11-26T09:17:00.123Z info label: message key=value`.
    case text

    /// `.journal` when standard error is the journal's stream: `$JOURNAL_STREAM` (`device:inode`, set by
    /// systemd) names the file `descriptor` is open on. Otherwise `.text`.
    public static func detect(environment: [String: String] = ProcessInfo.processInfo.environment, descriptor: Int32 = 2) -> LogFormat {
        guard let stream = environment["JOURNAL_STREAM"] else { return .text }
        let parts = stream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return .text }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return .text }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode ? .journal : .text
    }
}

/// The level every caresync logger follows, changed at run time by a configuration reload.
public final class LogLevelControl: Sendable {
    private let value: Mutex<Logger.Level>

    /// A control starting at `level`.
    public init(_ level: Logger.Level) {
        value = Mutex(level)
    }

    /// The current level.
    public var level: Logger.Level {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

/// Where finished lines go.
public struct LogOutput: Sendable {
    private let write: @Sendable (String) -> Void

    /// An output calling `write` with each line (newline included).
    public init(_ write: @escaping @Sendable (String) -> Void) {
        self.write = write
    }

    /// Writes each line to a file descriptor in one `write(2)` (standard error by default), so lines from
    /// different threads never interleave.
    public static func fileDescriptor(_ descriptor: Int32 = 2) -> LogOutput {
        LogOutput { line in
            let bytes = Array(line.utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }

    func callAsFunction(_ line: String) { write(line) }
}

/// caresync's `LogHandler`: journald-friendly or readable lines, patient identifiers masked in the
/// message, the metadata and the error.
public struct CaresyncLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    private let label: String
    private let format: LogFormat
    private let output: LogOutput
    private let control: LogLevelControl
    private let redactor: PatientDataRedactor
    private var explicitLevel: Logger.Level?

    /// A handler for the logger `label`, writing `format` lines to `output` at `control`'s level.
    public init(
        label: String,
        format: LogFormat,
        output: LogOutput = .fileDescriptor(),
        control: LogLevelControl,
        redactor: PatientDataRedactor = PatientDataRedactor(),
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.label = label
        self.format = format
        self.output = output
        self.control = control
        self.redactor = redactor
        self.metadataProvider = metadataProvider
    }

    /// The level set on this logger, else the shared one.
    public var logLevel: Logger.Level {
        get { explicitLevel ?? control.level }
        set { explicitLevel = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        if let error = event.error { merged["error"] = .string("\(error)") }
        output(line(level: event.level, message: event.message.description, metadata: merged, date: Date()))
    }

    /// The line for one event (newline included).
    func line(level: Logger.Level, message: String, metadata: Logger.Metadata, date: Date) -> String {
        var text: String
        switch format {
        case .journal: text = "<\(Self.syslogPriority(level))>\(label): "
        case .text: text = "\(Self.timestamp(date)) \(level) \(label): "
        }
        text += Self.singleLine(redactor.mask(message))
        for key in metadata.keys.sorted() {
            text += " \(key)=" + Self.render(redactor.redact(metadata[key]!, key: key))
        }
        return text + "\n"
    }

    /// The syslog priority of a level (RFC 5424: 7 debug … 2 critical).
    public static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func render(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): return quoted(text)
        case .stringConvertible(let convertible): return quoted(convertible.description)
        case .array(let items): return "[" + items.map(render).joined(separator: ", ") + "]"
        case .dictionary(let dictionary):
            return "{" + dictionary.keys.sorted().map { "\($0)=\(render(dictionary[$0]!))" }.joined(separator: ", ") + "}"
        }
    }

    static func quoted(_ text: String) -> String {
        let needsQuotes =
            text.isEmpty || text.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "," || $0 == "]" || $0 == "}" || $0.isNewline }
        guard needsQuotes else { return text }
        let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\"" + singleLine(escaped) + "\""
    }

    /// Newlines escaped so one event stays one line (journald splits on newlines).
    static func singleLine(_ text: String) -> String {
        guard text.contains(where: \.isNewline) else { return text }
        return text.replacingOccurrences(of: "\r\n", with: "\\n").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

/// The process-wide logging set-up of the daemon and the CLI.
public enum CaresyncLogging {
    /// Bootstraps swift-log with ``CaresyncLogHandler`` on standard error, in the format
    /// ``LogFormat/detect(environment:descriptor:)`` picks. Call once, from `main`; never in tests.
    /// The returned control changes every logger's level (on reload).
    @discardableResult
    public static func bootstrap(level: Logger.Level, environment: [String: String] = ProcessInfo.processInfo.environment) -> LogLevelControl {
        let control = LogLevelControl(level)
        let format = LogFormat.detect(environment: environment)
        LoggingSystem.bootstrap({ label, provider in
            CaresyncLogHandler(label: label, format: format, control: control, metadataProvider: provider)
        }, metadataProvider: nil)
        return control
    }
}
