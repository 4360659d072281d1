import Glibc

/// The writer lock: an exclusive `flock` on `<state dir>/caresync.lock`, held for the life of the
/// writer. The holder writes its pid into the file so a refused writer can name it. The kernel drops
/// the lock when the holder exits, however it exits (SIGKILL included), so a stale file never blocks.
final class WriterLock: Sendable {
    let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Takes the lock or throws ``StateStoreError/Code/lockHeld`` naming the holder's pid.
    ///
    /// When the file names this very process, the lock was released here an instant ago but a child being
    /// spawned meanwhile still has a copy of the descriptor until it execs (`O_CLOEXEC` closes it only
    /// then); that is retried for up to `ownReleaseWaitMilliseconds` before it counts as held.
    static func acquire(path: String) throws(StateStoreError) -> WriterLock {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw StateStoreError(.lockFailed, "cannot open the lock file: \(String(cString: strerror(errno)))", path: path)
        }
        var retries = ownReleaseWaitMilliseconds / 10
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let reason = errno
            let holder = readPID(descriptor)
            if reason == EWOULDBLOCK, holder == getpid(), retries > 0 {
                retries -= 1
                usleep(10_000)
                continue
            }
            close(descriptor)
            if reason == EWOULDBLOCK {
                let who = holder.map { "process \($0)" } ?? "another process"
                throw StateStoreError(
                    .lockHeld,
                    "the state store is in use by \(who) (another caresync daemon?); only one writer may run",
                    path: path,
                    lockHolderPID: holder
                )
            }
            throw StateStoreError(.lockFailed, "cannot lock: \(String(cString: strerror(reason)))", path: path)
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        return WriterLock(path: path, descriptor: descriptor)
    }

    /// How long a lock that names this process is waited for (see ``acquire(path:)``).
    static let ownReleaseWaitMilliseconds = 2000

    /// Releases the lock (closing the descriptor drops the `flock`).
    func release() {
        close(descriptor)
    }

    private static func readPID(_ descriptor: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let digits = buffer[0..<count].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return Int32(String(decoding: digits, as: UTF8.self))
    }
}
