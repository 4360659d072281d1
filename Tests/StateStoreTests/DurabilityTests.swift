import CaresyncTestSupport
import FHIRModel
import Foundation
import Glibc
import GRDB
import StateStore
import Testing

@Suite("Durability: pragmas, writer lock, damaged and newer files, concurrent readers")
struct DurabilityTests {
    @Test("the writer runs WAL with synchronous=FULL and a bounded WAL")
    func pragmas() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }
        #expect(try store.writerPragma("journal_mode") == "wal")
        #expect(try store.writerPragma("synchronous") == "2")  // FULL
        #expect(try store.writerPragma("wal_autocheckpoint") == "1000")
        #expect(try store.writerPragma("journal_size_limit") == String(64 << 20))
        #expect(try store.writerPragma("page_size") == "16384", "a new file holds several 2–4 KB records per page")
        try store.checkpoint(truncate: true)
    }

    @Test("a second writer is refused by the lock file, naming the holder's pid")
    func secondWriterRefused() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let child = try ChildProcess(
            executable: try TestPaths.product("statestore-crash-child"),
            arguments: ["--dir", fixture.path, "--mode", "crash", "--incarnation", "1", "--seed", "7"]
        )
        _ = try await child.waitForLine { $0.hasPrefix("READY") }

        let refused = await storeError { _ = try SQLiteStateStore.open(directory: fixture.path, access: .writer) }
        #expect(refused?.code == .lockHeld)
        #expect(refused?.lockHolderPID == child.pid)
        #expect(refused?.path == fixture.directory.path(SQLiteStateStore.lockFileName).path)

        // Readers and operators do not need the lock.
        let reader = try SQLiteStateStore.open(directory: fixture.path, access: .reader)
        #expect(try await reader.status().map(\.peer.name) == ["hub"])
        reader.close()

        child.send(SIGKILL)
        try await child.waitForExit()
        // The kernel dropped the lock with the process.
        let writer = try SQLiteStateStore.open(directory: fixture.path, access: .writer)
        writer.close()
    }

    @Test("a lock released here while a spawned child still held a copy of its descriptor is taken once the child lets go")
    func ownLockReleasedLate() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        try await fixture.openWriter().close()
        // A second open file description of the lock file, locked by this process: what a child between
        // fork and exec holds. The file still names this process, as after our own release.
        let lockPath = fixture.directory.path(SQLiteStateStore.lockFileName).path
        let copy = open(lockPath, O_RDWR | O_CLOEXEC)
        #expect(copy >= 0)
        #expect(flock(copy, LOCK_EX | LOCK_NB) == 0)
        // A thread of its own: the opening below blocks its caller, and a busy cooperative pool could
        // starve a task.
        Thread.detachNewThread {
            usleep(300_000)
            close(copy)
        }
        let writer = try SQLiteStateStore.open(directory: fixture.path, access: .writer)
        writer.close()
    }

    @Test("a damaged file is a clear error naming it, and is left untouched")
    func corruptedFile() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        let pushes = (0..<3_000).map { push("cp-\($0)", #"{"resourceType":"CarePlan","n":\#($0)}"#) }
        _ = try await store.enqueue(pushes)
        store.close()

        // Overwrite a page in the middle of the file with noise.
        let url = URL(fileURLWithPath: fixture.databasePath)
        var bytes = try Data(contentsOf: url)
        let page = 4096
        let middle = (bytes.count / page / 2) * page
        var generator = SystemRandomNumberGenerator()
        for offset in middle..<(middle + page) { bytes[offset] = UInt8.random(in: 0...255, using: &generator) }
        try bytes.write(to: url)
        let before = try Data(contentsOf: url)

        let error = await storeError { _ = try SQLiteStateStore.open(directory: fixture.path, access: .writer) }
        #expect(error?.code == .databaseCorrupt)
        #expect(error?.path == fixture.databasePath)
        #expect(error?.message.contains("damaged") == true)
        #expect(try Data(contentsOf: url) == before)
        // Still refused on the next start: nothing was reset.
        #expect(await storeError { _ = try SQLiteStateStore.open(directory: fixture.path, access: .writer) }?.code == .databaseCorrupt)
    }

    @Test("a file that is not a database at all is a clear error, left untouched")
    func notADatabase() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let garbage = Data(repeating: 0x41, count: 10_000)
        try garbage.write(to: URL(fileURLWithPath: fixture.databasePath))
        let error = await storeError { _ = try SQLiteStateStore.open(directory: fixture.path, access: .writer) }
        #expect(error?.code == .databaseCorrupt)
        #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.databasePath)) == garbage)
    }

    @Test("a schema written by a newer caresync is refused by every kind of access")
    func newerSchema() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        try await fixture.openWriter().close()
        let raw = try DatabaseQueue(path: fixture.databasePath)
        try await raw.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v2-from-the-future')") }
        try raw.close()

        for access in [StoreAccess.writer, .operator, .reader] {
            let error = await storeError { _ = try SQLiteStateStore.open(directory: fixture.path, access: access) }
            #expect(error?.code == .schemaTooNew)
            #expect(error?.path == fixture.databasePath)
        }
    }

    @Test("readers and operators never create or migrate the database; readers never write")
    func accessModes() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        #expect(await storeError { _ = try SQLiteStateStore.open(directory: fixture.path, access: .reader) }?.code == .databaseMissing)
        #expect(await storeError { _ = try SQLiteStateStore.open(directory: fixture.path, access: .operator) }?.code == .databaseMissing)
        #expect(!FileManager.default.fileExists(atPath: fixture.databasePath))

        let writer = try await fixture.openWriter()
        defer { writer.close() }
        let reader = try SQLiteStateStore.open(directory: fixture.path, access: .reader, options: fixture.options())
        defer { reader.close() }
        #expect(await storeError { _ = try await reader.enqueue([push("cp-1", "1")]) }?.code == .readOnly)
        let operatorStore = try SQLiteStateStore.open(directory: fixture.path, access: .operator, options: fixture.options())
        defer { operatorStore.close() }
        _ = try await operatorStore.enqueue([push("cp-1", "1")])
        #expect(try await reader.queue(peer: "hub", limit: 10).depth == 1)
    }

    @Test("a reader in another connection sees whole transactions while a writer process commits")
    func concurrentReader() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let child = try ChildProcess(
            executable: try TestPaths.product("statestore-crash-child"),
            arguments: ["--dir", fixture.path, "--mode", "batches", "--seed", "11"]
        )
        defer { child.send(SIGKILL) }
        _ = try await child.waitForLine { $0.hasPrefix("BATCH 5 ") }

        let reader = try SQLiteStateStore.open(directory: fixture.path, access: .reader)
        defer { reader.close() }
        var lastDepth = 0
        var growing = 0
        var reads = 0
        // The writer never stops on its own: read until at least two commits were seen land, however
        // slow the machine is.
        while (reads < 20 || growing < 2) && reads < 2_000 {
            reads += 1
            let listing = try await reader.queue(peer: "hub", limit: 1_000_000)
            #expect(listing.depth == listing.items.count, "depth counter and rows disagree within one snapshot")
            var batches: [Int: (count: Int, size: Int)] = [:]
            for item in listing.items {
                let body = try JSONDecoder().decode(BatchBody.self, from: Data(item.push.body))
                batches[body.batch, default: (0, body.size)].count += 1
            }
            #expect(batches.values.allSatisfy { $0.count == $0.size }, "a reader saw part of a transaction")
            #expect(batches.keys.sorted() == Array(0..<batches.count), "a reader saw a later transaction without an earlier one")
            if listing.depth > lastDepth { growing += 1 }
            #expect(listing.depth >= lastDepth)
            lastDepth = listing.depth
            let status = try await reader.status()
            #expect(status.first?.queueDepth ?? 0 >= listing.depth)
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(growing > 1, "the writer was not running while the reader read")
        #expect(child.process.isRunning)
    }

    struct BatchBody: Decodable {
        var batch: Int
        var size: Int
    }
}
