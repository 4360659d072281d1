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

    @Test("the synthetic test range: valid, distinct, ascending, inside 999 000 0000 – 999 999 9999")
    func testRange() {
        let numbers = NHSNumber.testRange(count: 500, from: 999_000_000)
        #expect(numbers.count == 500)
        #expect(numbers.first?.digits == "9990000018")
        #expect(numbers == numbers.sorted())
        #expect(Set(numbers).count == 500)
        #expect(numbers.allSatisfy { $0.digits.hasPrefix("999") })
        // The range ends at 999 999 999x: fewer numbers than asked for, none outside it.
        let last = NHSNumber.testRange(count: 50, from: 999_999_990)
        #expect(!last.isEmpty && last.count < 10)
        #expect(last.allSatisfy { $0.digits.hasPrefix("99999999") })
        // A start below the range starts at the range.
        #expect(NHSNumber.testRange(count: 1, from: 123_456_789).first?.digits.hasPrefix("999") == true)
    }

    @Test("interpolation masks the number")
    func masked() throws {
        let number = try NHSNumber(validating: "9434765919")
        #expect("\(number)" == "*******919")
        #expect(!"\(number)".contains("9434765"))
    }
}
