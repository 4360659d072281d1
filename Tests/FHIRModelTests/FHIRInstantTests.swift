import FHIRModel
import Testing

@Suite("FHIR instant")
struct FHIRInstantTests {
    @Test("full instants parse to the right epoch milliseconds")
    func parses() throws {
        #expect(FHIRInstant("1970-01-01T00:00:00Z")?.millisecondsSinceEpoch == 0)
        #expect(FHIRInstant("2025-04-01T09:30:00.123+01:00")?.millisecondsSinceEpoch == 1_743_496_200_123)
        #expect(FHIRInstant("2024-02-29T23:59:59.5-00:30")?.millisecondsSinceEpoch == 1_709_252_999_500)
        #expect(FHIRInstant("1969-12-31T23:59:59.999Z")?.millisecondsSinceEpoch == -1)
    }

    @Test("partial or malformed instants are rejected", arguments: [
        "2025-04-01", "2025-04-01T09:30Z", "2025-04-01T09:30:00", "2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
        "2025-04-01T24:00:00Z", "2025-04-01T09:30:00.Z", "2025-04-01T09:30:00+0100", "2025-04-01T09:30:00Zjunk",
    ])
    func rejects(text: String) {
        #expect(FHIRInstant(text) == nil)
    }

    @Test("formatting round-trips through parsing")
    func formats() throws {
        for millis: Int64 in [0, 1_743_496_200_123, -1, 951_782_400_000, 4_102_444_799_999] {
            let instant = FHIRInstant(millisecondsSinceEpoch: millis)
            #expect(FHIRInstant(instant.text)?.millisecondsSinceEpoch == millis, "\(instant.text)")
        }
        #expect(FHIRInstant(millisecondsSinceEpoch: 1_743_496_200_123).text == "2025-04-01T08:30:00.123Z")
        #expect(FHIRInstant("2025-04-01T08:30:00Z")!.adding(milliseconds: -1500).text == "2025-04-01T08:29:58.500Z")
    }
}
