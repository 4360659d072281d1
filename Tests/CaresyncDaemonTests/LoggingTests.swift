import CaresyncDaemon
import CaresyncTestSupport
import Foundation
import Logging
import Testing

@Suite("Logging")
struct LoggingTests {
    struct Failure: Error, CustomStringConvertible {
        var description: String { "patient 9434765919 not found" }
    }

    @Test("journal lines: one per event, <N> syslog priority, no timestamp")
    func journalFormat() {
        let logs = LogCollector()
        var logger = logs.logger(label: "caresync.sync", format: .journal, level: .debug)
        logger[metadataKey: "peer"] = "riverside-acute"
        logger.info("pulled records", metadata: ["count": "12", "type": "CarePlan"])
        logger.error("push failed", metadata: ["detail": "line one\nline two"])
        logger.debug("cursor advanced")
        logger.trace("not shown at debug")
        logger.critical("state store damaged")
        logger.warning("retrying", error: Failure())
        #expect(
            logs.all == [
                "<6>caresync.sync: pulled records count=12 peer=riverside-acute type=CarePlan\n",
                "<3>caresync.sync: push failed detail=\"line one\\nline two\" peer=riverside-acute\n",
                "<7>caresync.sync: cursor advanced peer=riverside-acute\n",
                "<2>caresync.sync: state store damaged peer=riverside-acute\n",
                "<4>caresync.sync: retrying error=\"patient *******919 not found\" peer=riverside-acute\n",
            ])
        #expect(CaresyncLogHandler.syslogPriority(.notice) == 5)
    }

    @Test("text lines start with an ISO 8601 timestamp and the level")
    func textFormat() throws {
        let logs = LogCollector()
        let logger = logs.logger(label: "caresync", format: .text)
        logger.notice("started", metadata: ["version": "1"])
        let line = try #require(logs.all.first)
        let parts = line.split(separator: " ", maxSplits: 2)
        #expect(parts.count == 3)
        #expect(ISO8601DateFormatter.withFractionalSeconds.date(from: String(parts[0])) != nil, "\(line)")
        #expect(parts[1] == "notice")
        #expect(parts[2] == "caresync: started version=1\n")
    }

    @Test("NHS numbers are masked wherever they appear; patient fields are removed")
    func masking() {
        let logs = LogCollector()
        let logger = logs.logger(label: "caresync.merge")
        logger.info(
            "merged care plan for 9434765919",
            metadata: [
                "subject": "Patient/9434765919",
                "spaced": "943 476 5919",
                "dashed": "943-476-5919",
                "nhsNumber": "9434765919",
                "name": "Jane Smith",
                "patient": ["given": "Jane", "family": "Smith"],
                "birthDate": "1970-01-01",
                "related": ["contact": "01632 960123", "ids": .array(["9434765919", "12345"])],
                "count": "12345678901",
                "version": "3",
            ])
        let line = logs.all.joined()
        for clear in ["9434765919", "943 476 5919", "943-476-5919", "Jane", "Smith", "1970-01-01", "01632 960123"] {
            #expect(!line.contains(clear), "\(clear) appears in clear: \(line)")
        }
        #expect(line.contains("merged care plan for *******919"))
        #expect(line.contains("subject=Patient/*******919"))
        #expect(line.contains("spaced=*******919"))
        #expect(line.contains("name=<redacted>"))
        #expect(line.contains("patient=<redacted>"))
        #expect(line.contains("ids=[*******919, 12345]"))
        #expect(line.contains("count=12345678901"), "an 11-digit number is not an NHS number")
        #expect(line.contains("version=3"))
    }

    @Test("the redactor on its own")
    func redactor() {
        let redactor = PatientDataRedactor()
        #expect(redactor.mask("9434765919") == "*******919")
        #expect(redactor.mask("a9434765919b") == "a*******919b")
        #expect(redactor.mask("94347659190") == "94347659190")
        #expect(redactor.mask("ids 9434765919,4010232137") == "ids *******919,*******137")
        #expect(redactor.mask("943 476 591") == "943 476 591")
        #expect(redactor.isPatientField("Patient_Name"))
        #expect(redactor.isPatientField("subject.family"))
        #expect(!redactor.isPatientField("peer"))
    }

    @Test("JOURNAL_STREAM selects the journal format only when it names standard error's file")
    func detection() throws {
        let directory = try TemporaryDirectory(prefix: "caresync-journal")
        defer { directory.remove() }
        let path = try directory.write("stream", "")
        let descriptor = open(path, O_WRONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var status = stat()
        try #require(fstat(descriptor, &status) == 0)
        let matching = "\(status.st_dev):\(status.st_ino)"
        #expect(LogFormat.detect(environment: ["JOURNAL_STREAM": matching], descriptor: descriptor) == .journal)
        #expect(LogFormat.detect(environment: ["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino + 1)"], descriptor: descriptor) == .text)
        #expect(LogFormat.detect(environment: ["JOURNAL_STREAM": "garbage"], descriptor: descriptor) == .text)
        #expect(LogFormat.detect(environment: [:], descriptor: descriptor) == .text)
    }

    @Test("the shared level changes every logger that has none of its own")
    func levelControl() {
        let control = LogLevelControl(.info)
        var handler = CaresyncLogHandler(label: "x", format: .journal, output: LogOutput { _ in }, control: control)
        #expect(handler.logLevel == .info)
        control.level = .debug
        #expect(handler.logLevel == .debug)
        handler.logLevel = .error
        control.level = .trace
        #expect(handler.logLevel == .error)
    }
}

extension ISO8601DateFormatter {
    static var withFractionalSeconds: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
