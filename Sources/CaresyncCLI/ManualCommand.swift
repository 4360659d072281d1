import ArgumentParser
import FHIRJSON
import Foundation

/// `caresync generate-manual [--output FILE]` (hidden): writes the `caresync(1)` man page, generated
/// from the command definitions themselves (argument-parser's `--experimental-dump-help` tool info), so
/// the page lists exactly the commands, options and help texts the binary has. `make install` runs it;
/// shell completions come from argument-parser's `--generate-completion-script`.
struct GenerateManualCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-manual",
        abstract: "Write the caresync(1) man page (troff) generated from the command definitions.",
        shouldDisplay: false
    )

    @Option(name: .long, help: "Write the page to this file instead of standard output.")
    var output: String?

    func run() throws {
        let page: String
        do {
            page = try ManualPage.render(try Self.toolInfo())
        } catch {
            FileHandle.standardError.write(Data("caresync generate-manual: \(error)\n".utf8))
            throw CaresyncExitCode.failure.exitCode
        }
        if let output {
            do {
                try Data(page.utf8).write(to: URL(fileURLWithPath: output))
            } catch {
                FileHandle.standardError.write(Data("caresync generate-manual: cannot write \(output): \(error.localizedDescription)\n".utf8))
                throw CaresyncExitCode.failure.exitCode
            }
        } else {
            FileHandle.standardOutput.write(Data(page.utf8))
        }
    }

    /// The command tree as argument-parser describes it (`--experimental-dump-help`), read in-process.
    static func toolInfo() throws -> JSON {
        let text: String
        do {
            _ = try CaresyncCommand.parseAsRoot(["--experimental-dump-help"])
            throw ManualError("argument-parser did not describe the commands")
        } catch let error as ManualError {
            throw error
        } catch {
            text = CaresyncCommand.fullMessage(for: error)
        }
        do {
            return try JSON.parse(Array(text.utf8))
        } catch {
            throw ManualError("the command description is not JSON: \(error.description)")
        }
    }
}

struct ManualError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Renders the tool info of argument-parser as a man(7) page.
enum ManualPage {
    static func render(_ info: JSON) throws -> String {
        guard let root = info["command"], let name = root["commandName"]?.stringValue else {
            throw ManualError("the command description has no root command")
        }
        var page = ".TH \(name.uppercased()) 1 \"\" \"\(name)\" \"caresync operator's manual\"\n"
        page += ".SH NAME\n\(escape(name)) \\- \(escape(root["abstract"]?.stringValue ?? ""))\n"
        page += ".SH SYNOPSIS\n.B \(name)\n.I command\n.RI [ options ]\n"
        page += ".SH DESCRIPTION\n"
        page += text("""
            caresync keeps FHIR R4 CarePlan, Encounter and RelatedPerson records in step between NHS provider \
            systems and the ICB shared care record (the hub). The daemon runs under systemd; the operator commands \
            below read its state database directly (safe while it runs) and make short, audited changes to it.
            """)
        page += ".SH COMMANDS\n"
        for command in commands(root, path: [name]) {
            page += section(command.info, path: command.path, isDefault: command.isDefault)
        }
        page += """
            .SH EXIT STATUS
            .TP
            .B 0
            Success (for status: healthy; for audit verify: the chain holds).
            .TP
            .B 1
            Failure, or something needs attention (status), a check failed (peers probe), the chain is broken (audit verify), a resync failed.
            .TP
            .B 2
            Invalid input or usage: an unknown peer, a malformed NHS number, an unknown id, no state directory.
            .TP
            .B 3
            Conflicts (merge).
            .TP
            .B 4
            Refused by a safety rule (merge).
            .SH ENVIRONMENT
            .TP
            .B NO_COLOR
            When set, output is never coloured (it is coloured only on a terminal anyway).
            .TP
            .B CREDENTIALS_DIRECTORY
            Where credential:NAME files are read from (set by systemd for the daemon; set it by hand for check\\-config and peers probe).
            .TP
            .B CARESYNC_*
            Override configuration keys (CARESYNC_STATE_PATH, CARESYNC_SYNC_INTERVAL, ...).
            .SH FILES
            .TP
            .I /etc/caresync/caresync.yaml
            The configuration (\\-\\-config).
            .TP
            .I /var/lib/caresync/caresync.sqlite
            The state database (state.path, or \\-\\-state\\-dir).
            .TP
            .I /var/lib/caresync/caresync.lock
            The daemon's writer lock; holds its pid (resync signals it with SIGUSR1).
            .SH SEE ALSO
            .BR systemctl (1),
            .BR journalctl (1);
            the operator guide, operator\\-guide.md, installed with the documentation.

            """
        return page
    }

    private struct Command {
        let info: JSON
        let path: [String]
        let isDefault: Bool
    }

    /// Leaf commands in definition order, each with its full name; hidden commands and `help` left out.
    private static func commands(_ command: JSON, path: [String], isDefault: Bool = false) -> [Command] {
        let subcommands = (command["subcommands"]?.arrayValue ?? []).filter {
            $0["shouldDisplay"] != false && $0["commandName"]?.stringValue != "help"
        }
        guard !subcommands.isEmpty else { return [Command(info: command, path: path, isDefault: isDefault)] }
        let defaultName = command["defaultSubcommand"]?.stringValue
        return subcommands.flatMap { sub in
            let name = sub["commandName"]?.stringValue ?? "?"
            return commands(sub, path: path + [name], isDefault: name == defaultName)
        }
    }

    private static func section(_ command: JSON, path: [String], isDefault: Bool) -> String {
        let arguments = (command["arguments"]?.arrayValue ?? []).filter { $0["shouldDisplay"] != false && !isHelp($0) }
        var synopsis = path.joined(separator: " ")
        for argument in arguments { synopsis += " " + usage(argument) }
        var out = ".SS \"\(escape(synopsis).replacingOccurrences(of: "\"", with: "\\(dq"))\"\n"
        var abstract = command["abstract"]?.stringValue ?? ""
        if isDefault {
            abstract += " (the default: \(path.dropLast().joined(separator: " ")) alone runs it)"
        }
        out += text(abstract)
        if let discussion = command["discussion"]?.stringValue, !discussion.isEmpty {
            out += ".PP\n" + text(discussion)
        }
        for argument in arguments {
            out += ".TP\n" + label(argument) + "\n" + escape(argument["abstract"]?.stringValue ?? "") + "\n"
        }
        return out
    }

    private static func isHelp(_ argument: JSON) -> Bool {
        argument["names"]?.arrayValue?.contains { $0["name"] == "help" } == true
    }

    /// `[--peer <peer>]`, `<id>`, `[<files> ...]`.
    private static func usage(_ argument: JSON) -> String {
        let value = argument["valueName"]?.stringValue ?? "value"
        var text: String
        switch argument["kind"]?.stringValue {
        case "positional":
            text = "<\(value)>"
        case "flag":
            text = preferred(argument)
        default:
            text = "\(preferred(argument)) <\(value)>"
        }
        if argument["isRepeating"] == true { text += " ..." }
        return argument["isOptional"] == true ? "[\(text)]" : text
    }

    private static func preferred(_ argument: JSON) -> String {
        let name = argument["preferredName"] ?? argument["names"]?.arrayValue?.first
        let text = name?["name"]?.stringValue ?? "?"
        return (name?["kind"]?.stringValue == "short" ? "-" : "--") + text
    }

    /// `.BR \-\-peer " <peer>"` style label for an argument.
    private static func label(_ argument: JSON) -> String {
        let value = argument["valueName"]?.stringValue ?? "value"
        switch argument["kind"]?.stringValue {
        case "positional":
            return ".I \(escape(value))"
        case "flag":
            return ".B \(escape(preferred(argument)))"
        default:
            return ".BI \"\(escape(preferred(argument))) \" <\(escape(value))>"
        }
    }

    /// A paragraph: escaped, one sentence per line is not needed; lines starting with a dot are guarded.
    private static func text(_ paragraph: String) -> String {
        paragraph.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            let escaped = escape(String(line))
            return escaped.hasPrefix(".") || escaped.hasPrefix("'") ? "\\&" + escaped : escaped
        }.joined(separator: "\n") + "\n"
    }

    /// Backslashes and hyphens as troff wants them.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\e").replacingOccurrences(of: "-", with: "\\-")
    }
}
