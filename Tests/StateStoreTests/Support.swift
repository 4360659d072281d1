import CaresyncTestSupport
import FHIRModel
import Foundation
import StateStore
import Synchronization

/// A clock the test moves by hand.
final class ManualClock: WallClock {
    private let now = Mutex<Int64>(1_750_000_000_000)

    func nowMilliseconds() -> Int64 { now.withLock { $0 } }

    func advance(milliseconds: Int64) { now.withLock { $0 += milliseconds } }
}

/// Randomness pinned to one value.
struct FixedRandom: RandomSource {
    var unit: Double
    func nextUnit() -> Double { unit }
}

/// A state directory in a fresh temporary directory, removed at the end of the test.
struct StoreFixture {
    let directory: TemporaryDirectory
    let clock = ManualClock()

    init() throws {
        directory = try TemporaryDirectory(prefix: "caresync-state")
    }

    var path: String { directory.url.path }
    var databasePath: String { directory.path(SQLiteStateStore.databaseFileName).path }

    func options(random: Double = 0) -> StoreOptions {
        StoreOptions(clock: clock, random: FixedRandom(unit: random))
    }

    /// Opens the writer and registers the peers `hub`, `trust-a` and `trust-b`.
    func openWriter(random: Double = 0) async throws -> SQLiteStateStore {
        let store = try SQLiteStateStore.open(directory: path, access: .writer, options: options(random: random))
        try await store.registerPeer(PeerDescriptor(name: "hub", ods: "QWE", baseURL: "https://hub.test/fhir", mode: .hub))
        try await store.registerPeer(
            PeerDescriptor(name: "trust-a", ods: "RX1", baseURL: "https://a.test/fhir", mode: .readWrite)
        )
        try await store.registerPeer(
            PeerDescriptor(name: "trust-b", ods: "RX2", baseURL: "https://b.test/fhir", mode: .readOnly)
        )
        return store
    }
}

func key(_ value: String, _ type: ResourceType = .carePlan) -> GlobalKey {
    GlobalKey(resourceType: type, identifier: BusinessIdentifier(system: "https://trust-a.test/careplan", value: value))
}

func json(_ text: String) -> [UInt8] { Array(text.utf8) }

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// A valid NHS number (Modulus 11) for test patients.
let patientA = try! NHSNumber(validating: "9434765919")
let patientB = try! NHSNumber(validating: "9434765870")

func push(
    _ record: String,
    _ body: String,
    peer: String = "hub",
    nhs: NHSNumber? = patientA,
    baseOwners: [String]? = nil
) -> PushRequest {
    PushRequest(
        peer: peer,
        recordKey: key(record),
        nhsNumber: nhs,
        operation: .update,
        localID: record,
        ifMatchVersion: "1",
        body: json(body),
        baseOwners: baseOwners
    )
}

/// Runs `body` and returns the `StateStoreError` it threw, or `nil`.
func storeError(_ body: () async throws -> Void) async -> StateStoreError? {
    do {
        try await body()
        return nil
    } catch let error as StateStoreError {
        return error
    } catch {
        return StateStoreError(.sqlite, "unexpected error type: \(error)")
    }
}
