public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The `sd_notify` protocol without libsystemd: one datagram of `KEY=value` lines to the `AF_UNIX` socket
/// in `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
public struct SystemdNotifier: Sendable {
    /// The socket as `$NOTIFY_SOCKET` names it.
    public let socketPath: String

    /// A notifier for `$NOTIFY_SOCKET`, or `nil` when the process is not run by systemd with `Type=notify`.
    public init?(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return nil }
        self.socketPath = path
    }

    /// A notifier for an explicit socket.
    public init(socketPath: String) {
        self.socketPath = socketPath
    }

    /// One assignment of the protocol.
    public enum State: Sendable, Equatable {
        /// `READY=1`: start-up (or a reload) finished.
        case ready
        /// `STOPPING=1`: shutdown began.
        case stopping
        /// `RELOADING=1` (with `MONOTONIC_USEC`, which `Type=notify-reload` requires).
        case reloading
        /// `WATCHDOG=1`: the keep-alive ping.
        case watchdog
        /// `STATUS=…`: one line shown by `systemctl status`.
        case status(String)

        var lines: [String] {
            switch self {
            case .ready: return ["READY=1"]
            case .stopping: return ["STOPPING=1"]
            case .reloading: return ["RELOADING=1", "MONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())"]
            case .watchdog: return ["WATCHDOG=1"]
            case .status(let text):
                let line = text.map { $0.isNewline ? " " : $0 }
                return ["STATUS=" + String(line.prefix(1024))]
            }
        }
    }

    /// The datagram for `states`.
    public static func message(_ states: [State]) -> String {
        states.flatMap(\.lines).joined(separator: "\n")
    }

    /// Sends `states` in one datagram.
    public func notify(_ states: State...) throws(SystemdNotifyError) {
        try notify(states)
    }

    /// Sends `states` in one datagram.
    public func notify(_ states: [State]) throws(SystemdNotifyError) {
        let payload = Array(Self.message(states).utf8)
        var path = Array(socketPath.utf8)
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { throw SystemdNotifyError("NOTIFY_SOCKET path is longer than \(capacity - 1) bytes") }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: path)
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count + (abstract ? 0 : 1))
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw SystemdNotifyError("socket(AF_UNIX): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let sent = payload.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                    sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                }
            }
        }
        guard sent == payload.count else {
            throw SystemdNotifyError("sending to \(socketPath): \(sent < 0 ? String(cString: strerror(errno)) : "short write")")
        }
    }

    /// Half of `$WATCHDOG_USEC` — how often to send `WATCHDOG=1` — or `nil` when the watchdog is off or
    /// meant for another process (`$WATCHDOG_PID`).
    public static func watchdogPingInterval(environment: [String: String] = ProcessInfo.processInfo.environment) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let microseconds = UInt64(text), microseconds > 0 else { return nil }
        if let pid = environment["WATCHDOG_PID"], let value = Int32(pid), value != getpid() { return nil }
        return .microseconds(Int64(clamping: microseconds / 2))
    }

    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}

/// A notification could not be sent.
public struct SystemdNotifyError: Error, Sendable, CustomStringConvertible {
    /// Always `notify-failed`.
    public var code: String { "notify-failed" }
    /// What happened, in a sentence.
    public let message: String

    init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
