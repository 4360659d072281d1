import ArgumentParser
import CaresyncCLI

#if canImport(Glibc)
import Glibc
#endif

/// Runs the command line. Usage errors exit with 2 (DESIGN §7) rather than argument-parser's 64.
@main
enum Caresync {
    static func main() async {
        do {
            var command = try CaresyncCommand.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = CaresyncCommand.exitCode(for: error)
            if code == .validationFailure {
                let message = CaresyncCommand.fullMessage(for: error)
                FileHandleStderr.write(message + "\n")
                exit(CaresyncExitCode.invalidInput.rawValue)
            }
            CaresyncCommand.exit(withError: error)
        }
    }
}

/// Writes to standard error without Foundation.
enum FileHandleStderr {
    static func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            _ = Glibc.write(2, bytes.baseAddress, bytes.count)
        }
    }
}
