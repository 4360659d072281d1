import GRDB
import Synchronization

/// Runs write jobs on the single writer connection with group commit: the jobs that queue up while one
/// commit is in progress run next in ONE SQLite transaction, each inside its own savepoint.
///
/// Each job is still atomic (a job that throws rolls back its savepoint only, and gets its error) and is
/// answered only after the shared transaction has committed, so a client never sees a write that could
/// still be lost to a rollback. Under concurrent writers this saves a commit (WAL frames, WAL index) per
/// request; a lone writer sees one job per transaction, as before.
final class GroupCommitWriter: Sendable {
    private struct Job: Sendable {
        let body: @Sendable (Database) throws -> any Sendable
        let continuation: CheckedContinuation<any Sendable, any Error>
    }

    private struct Queue {
        var jobs: [Job] = []
        var draining = false
    }

    /// Most jobs in one transaction.
    private static let maximumBatch = 256

    private let pool: DatabasePool
    private let clock: ServerClock
    private let queue = Mutex(Queue())

    init(pool: DatabasePool, clock: ServerClock) {
        self.pool = pool
        self.clock = clock
    }

    /// Runs `body` atomically on the writer and returns its result once it has committed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let value = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<any Sendable, any Error>) in
            let startDraining = queue.withLock { queue in
                queue.jobs.append(Job(body: { try body($0) }, continuation: continuation))
                guard !queue.draining else { return false }
                queue.draining = true
                return true
            }
            if startDraining { Task { await self.drain() } }
        }
        return value as! T  // the job above returned a T
    }

    private func drain() async {
        while true {
            let jobs = queue.withLock { queue in
                let batch = Array(queue.jobs.prefix(Self.maximumBatch))
                queue.jobs.removeFirst(batch.count)
                if batch.isEmpty { queue.draining = false }
                return batch
            }
            guard !jobs.isEmpty else { return }
            let results: [Result<any Sendable, any Error>]
            do {
                results = try await pool.writeWithoutTransaction { db in
                    defer { self.clock.endWrite() }
                    var results: [Result<any Sendable, any Error>] = []
                    results.reserveCapacity(jobs.count)
                    try db.inTransaction(.immediate) {
                        for job in jobs {
                            do {
                                var value: (any Sendable)?
                                try db.inSavepoint {
                                    value = try job.body(db)
                                    return .commit
                                }
                                results.append(.success(value!))
                            } catch {
                                results.append(.failure(error))
                            }
                        }
                        return .commit
                    }
                    return results
                }
            } catch {
                // The transaction itself failed (BEGIN or COMMIT): nothing of this batch was written.
                results = jobs.map { _ in .failure(error) }
            }
            for (job, result) in zip(jobs, results) { job.continuation.resume(with: result) }
        }
    }
}
