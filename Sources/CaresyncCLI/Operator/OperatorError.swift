import ArgumentParser
import Foundation
import StateStore

/// Why an operator command stopped: one line for standard error and the exit code (DESIGN §7: 2 for bad
/// input — an unknown peer, a malformed NHS number, an unknown id, no state directory — 1 for failures).
struct OperatorError: Error {
    let message: String
    let exitCode: CaresyncExitCode

    /// Bad input: exit 2.
    static func invalidInput(_ message: String) -> OperatorError {
        OperatorError(message: message, exitCode: .invalidInput)
    }

    /// Something failed that the input did not cause: exit 1.
    static func failure(_ message: String) -> OperatorError {
        OperatorError(message: message, exitCode: .failure)
    }

    /// Ends the command with `code` and no message (the output already said why).
    static func quietExit(_ code: CaresyncExitCode) -> OperatorError {
        OperatorError(message: "", exitCode: code)
    }

    /// A state store error as an operator reads it: a missing database is bad input (wrong --state-dir),
    /// the rest are failures. Messages never carry NHS numbers (the store's do not).
    static func store(_ error: StateStoreError) -> OperatorError {
        var text = error.message
        if let path = error.path { text += " (\(path))" }
        if let underlying = error.underlying { text += ": \(underlying)" }
        if error.code == .sqlite, error.underlying?.contains("database is locked") == true {
            return .failure("the state database stayed locked by another writer (the daemon, stopped or stuck?) past the busy timeout; nothing was written: try again")
        }
        switch error.code {
        case .databaseMissing, .notFound, .invalidArgument, .alreadyResolved:
            return .invalidInput(text)
        default:
            return .failure(text)
        }
    }
}

/// Runs the body of an operator command: an ``OperatorError`` becomes `caresync NAME: message` on
/// standard error and the process exits with its code.
func runOperatorCommand(_ name: String, _ body: () async throws(OperatorError) -> Void) async throws {
    do {
        try await body()
    } catch {
        if !error.message.isEmpty {
            FileHandle.standardError.write(Data("caresync \(name): \(error.message)\n".utf8))
        }
        throw error.exitCode.exitCode
    }
}

/// Writes `text` to standard output at once (no buffering: progress lines and pipes see it in order).
func writeOut(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// Runs one state store call, turning its error into an ``OperatorError``.
func storeCall<T>(_ body: () async throws(StateStoreError) -> T) async throws(OperatorError) -> T {
    do {
        return try await body()
    } catch {
        throw .store(error)
    }
}
