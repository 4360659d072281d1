import FHIRModel
import Testing

@Suite("NHS number")
struct NHSNumberTests {
    @Test("valid numbers pass the Modulus 11 check", arguments: ["9000000009", "9434765919", "9990000018", "4010232137"])
    func valid(text: String) throws {
        #expect(try NHSNumber(validating: text).digits == text)
    }

    @Test(
        "invalid numbers name the rule they break",
        arguments: [
            ("943 476 5919", NHSNumber.Problem.containsSpaces),
            ("94347659", .wrongLength),
            ("94347659190", .wrongLength),
            ("943476591X", .notDigits),
            ("0000000000", .allSameDigits),
            ("4444444444", .allSameDigits),
            ("9434765918", .badCheckDigit),
            // Remainder 10 never yields a valid number, whatever the last digit.
            ("9990000010", .badCheckDigit),
        ]
    )
    func invalid(text: String, problem: NHSNumber.Problem) {
        #expect(throws: problem) { try NHSNumber(validating: text) }
    }

    @Test("check digit remainder 10 is invalid, 11 maps to 0")
    func checkDigitEdges() {
        // 1,0,0,0,0,0,0,0,1 → 10 + 2 = 12 → 11 - 1 = 10 → invalid.
        #expect(NHSNumber.checkDigit(forFirstNine: [1, 0, 0, 0, 0, 0, 0, 0, 1]) == nil)
        // 1,0,0,0,0,0,0,1,0 → 10 + 3... pick one summing to a multiple of 11: 1,1,0,... → 10 + 9 = 19; use 0,0,0,0,0,0,0,0,0 → 0 → 11 → 0
        #expect(NHSNumber.checkDigit(forFirstNine: [0, 0, 0, 0, 0, 0, 0, 0, 0]) == 0)
    }

    @Test("interpolation masks the number")
    func masked() throws {
        let number = try NHSNumber(validating: "9434765919")
        #expect("\(number)" == "*******919")
        #expect(!"\(number)".contains("9434765"))
    }
}
