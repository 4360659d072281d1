// `statestore-crash-child`: a writer process for the StateStore crash and concurrency tests.
//
//   statestore-crash-child --dir D --mode crash --incarnation N --seed S
//       enqueues / leases / completes / fails / dead-letters in a loop until killed, printing each
//       operation only after its transaction committed:
//         ENQ <requestID> <key> <seq> <supersededRequestID|->
//         DONE <requestID>   FAIL <requestID>   DEAD <requestID>
//   statestore-crash-child --dir D --mode batches
//       enqueues batches of pushes for fresh records until killed; each body names its batch and the
//       batch size:
//         BATCH <n> <size>
//
// Prints `READY <pid> <leasesReleased>` once the store is open. Pushes go to the peer `hub`.
import FHIRModel
import Foundation
import StateStore

/// Writes one line to stdout with a single `write(2)`, unbuffered: a line is out before the next step.
func emit(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

struct Arguments {
    var directory = ""
    var mode = "crash"
    var incarnation = 0
    var seed: UInt64 = 1

    init() {
        var iterator = CommandLine.arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            let value = iterator.next() ?? ""
            switch flag {
            case "--dir": directory = value
            case "--mode": mode = value
            case "--incarnation": incarnation = Int(value) ?? 0
            case "--seed": seed = UInt64(value) ?? 1
            default:
                FileHandle.standardError.write(Data("unknown argument \(flag)\n".utf8))
                exit(2)
            }
        }
    }
}

/// SplitMix64: a seeded generator so a failing run can be repeated.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func recordKey(_ name: String) -> GlobalKey {
    GlobalKey(resourceType: .carePlan, identifier: BusinessIdentifier(system: "urn:caresync-test:crash", value: name))
}

func body(_ fields: String) -> [UInt8] {
    Array("{\"resourceType\":\"CarePlan\",\(fields),\"padding\":\"\(String(repeating: "x", count: 200))\"}".utf8)
}

let arguments = Arguments()
var random = SeededGenerator(state: arguments.seed)
let store: SQLiteStateStore
do {
    store = try SQLiteStateStore.open(directory: arguments.directory, access: .writer)
    try await store.registerPeer(PeerDescriptor(name: "hub", ods: "QWE", baseURL: "http://127.0.0.1:1/fhir", mode: .hub))
} catch {
    FileHandle.standardError.write(Data("open failed: \(error)\n".utf8))
    exit(1)
}
emit("READY \(getpid()) \(store.recovery.leasesReleased)")

do {
    switch arguments.mode {
    case "batches":
        var batch = 0
        while true {
            let size = Int.random(in: 1...40, using: &random)
            let pushes = (0..<size).map { index in
                PushRequest(
                    peer: "hub",
                    recordKey: recordKey("batch-\(batch)-\(index)"),
                    nhsNumber: nil,
                    operation: .create,
                    body: body("\"batch\":\(batch),\"size\":\(size)")
                )
            }
            _ = try await store.enqueue(pushes)
            emit("BATCH \(batch) \(size)")
            batch += 1
            try await Task.sleep(for: .milliseconds(20))
        }
    default:
        var sequence = arguments.incarnation * 1_000_000
        while true {
            let count = Int.random(in: 1...8, using: &random)
            var pushes: [PushRequest] = []
            var sequences: [Int] = []
            for _ in 0..<count {
                sequence += 1
                let key = "rec-\(Int.random(in: 0..<20, using: &random))"
                sequences.append(sequence)
                pushes.append(
                    PushRequest(
                        peer: "hub",
                        recordKey: recordKey(key),
                        nhsNumber: nil,
                        operation: .update,
                        localID: key,
                        ifMatchVersion: "1",
                        body: body("\"key\":\"\(key)\",\"seq\":\(sequence)")
                    )
                )
            }
            let receipts = try await store.enqueue(pushes)
            for (index, receipt) in receipts.enumerated() {
                let push = pushes[index]
                emit("ENQ \(receipt.requestID) \(push.recordKey.identifier.value) \(sequences[index]) \(receipt.supersededRequestID ?? "-")")
            }
            let leased = try await store.lease(peer: "hub", limit: Int.random(in: 1...5, using: &random), durationMilliseconds: 600_000)
            for push in leased {
                try await Task.sleep(for: .milliseconds(1))  // the "HTTP request"
                let roll = Int.random(in: 0..<100, using: &random)
                if roll < 70 {
                    try await store.complete(push, with: PushCompletion(localID: push.item.push.localID ?? "x", versionID: "2"))
                    emit("DONE \(push.item.requestID)")
                } else if roll < 95 {
                    try await store.fail(push, error: "HTTP 503", retryAfterMilliseconds: 0)
                    emit("FAIL \(push.item.requestID)")
                } else {
                    try await store.deadLetter(push, httpStatus: 422, reason: "OperationOutcome: invalid")
                    emit("DEAD \(push.item.requestID)")
                }
            }
        }
    }
} catch {
    FileHandle.standardError.write(Data("operation failed: \(error)\n".utf8))
    exit(1)
}
