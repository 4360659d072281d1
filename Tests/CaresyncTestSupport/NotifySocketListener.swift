public import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A datagram socket standing in for systemd's notify socket: bound by the test (a path, or an abstract
/// `@name`), collecting each message with the time it arrived, on its own thread.
public final class NotifySocketListener: Sendable {
    /// What to put in `$NOTIFY_SOCKET`.
    public let address: String
    private let descriptor: Int32
    private let received = Mutex<[(message: String, at: ContinuousClock.Instant)]>([])
    private let stopped = Mutex(false)
    private let directory: String?

    public init(abstract: Bool = false) throws {
        let name = "caresync-notify-\(UUID().uuidString.prefix(8))"
        var directory: String?
        var pathBytes: [UInt8]
        if abstract {
            address = "@" + name
            pathBytes = [0] + Array(name.utf8)
        } else {
            let folder = NSTemporaryDirectory() + name
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            directory = folder
            address = folder + "/notify"
            pathBytes = Array(address.utf8)
        }
        self.directory = directory
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw NotifySocketError("socket: \(String(cString: strerror(errno)))") }
        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { $0.copyBytes(from: pathBytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + pathBytes.count + (abstract ? 0 : 1))
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else { throw NotifySocketError("bind \(address): \(String(cString: strerror(errno)))") }
        Thread { [self] in self.receiveLoop() }.start()
    }

    deinit {
        close(descriptor)
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }

    public func stop() {
        stopped.withLock { $0 = true }
    }

    private func receiveLoop() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !stopped.withLock({ $0 }) {
            var descriptors = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
            guard poll(&descriptors, 1, 50) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { continue }
            let message = String(decoding: buffer[0..<count], as: UTF8.self)
            received.withLock { $0.append((message, ContinuousClock.now)) }
        }
    }

    /// Every message so far.
    public var messages: [String] { received.withLock { $0.map(\.message) } }

    /// Every message so far with its arrival time.
    public var timedMessages: [(message: String, at: ContinuousClock.Instant)] { received.withLock { $0 } }

    /// Waits until `predicate` holds for the messages; fails the test after `timeout` (a guard against a
    /// hang, not a speed requirement).
    public func wait(timeout: Duration = .seconds(60), until predicate: ([String]) -> Bool) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !predicate(messages) {
            if ContinuousClock.now > deadline {
                throw NotifySocketError("timed out waiting; messages so far: \(messages)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// The notify socket could not be set up, or the awaited messages did not come.
public struct NotifySocketError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
