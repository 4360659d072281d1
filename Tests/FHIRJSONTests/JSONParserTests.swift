import FHIRJSON
import Testing

@Suite("JSON parser")
struct JSONParserTests {
    @Test("numbers keep the text they were written with")
    func numbersKeepLiteralText() throws {
        let value = try JSON.parse(#"{"a":1.50,"b":-0.0,"c":1e-7,"d":12345678901234567890}"#)
        #expect(value["a"]?.numberValue?.text == "1.50")
        #expect(value["b"]?.numberValue?.text == "-0.0")
        #expect(value["c"]?.numberValue?.text == "1e-7")
        #expect(value["d"]?.numberValue?.text == "12345678901234567890")
        #expect(value.text() == #"{"a":1.50,"b":-0.0,"c":1e-7,"d":12345678901234567890}"#)
    }

    @Test("member order is kept on output but ignored by equality")
    func memberOrder() throws {
        let first = try JSON.parse(#"{"z":1,"a":{"y":true,"b":null}}"#)
        let second = try JSON.parse(#"{"a":{"b":null,"y":true},"z":1}"#)
        #expect(first.text() == #"{"z":1,"a":{"y":true,"b":null}}"#)
        #expect(first == second)
        #expect(first.hashValue == second.hashValue)
        #expect(first.canonicalBytes == second.canonicalBytes)
        #expect(first.text(.canonical) == #"{"a":{"b":null,"y":true},"z":1}"#)
    }

    @Test("decimal precision is part of equality")
    func decimalPrecisionMatters() throws {
        #expect(try JSON.parse("1.5") != JSON.parse("1.50"))
    }

    @Test("escapes and unicode round-trip")
    func escapes() throws {
        let value = try JSON.parse(#""tab\tquote\"slash\/ \u00e9 \ud83d\ude00 ü \u0001""#)
        #expect(value.stringValue == "tab\tquote\"slash/ é 😀 ü \u{01}")
        #expect(value.text() == #""tab\tquote\"slash/ é 😀 ü \u0001""#)
        #expect(try JSON.parse(value.serialized()) == value)
    }

    @Test("pretty output parses back to the same value")
    func prettyRoundTrip() throws {
        let value = try JSON.parse(#"{"a":[1,{"b":"c"},[]],"d":{}}"#)
        let pretty = value.text(.pretty)
        #expect(pretty.contains("\n  \"a\": ["))
        #expect(try JSON.parse(pretty) == value)
    }

    @Test(
        "malformed input is rejected with a specific code",
        arguments: [
            ("", JSONParseError.Code.unexpectedEnd),
            ("{\"a\":1", .unexpectedEnd),
            ("{\"a\":1,\"a\":2}", .duplicateKey),
            ("[1,]", .unexpectedCharacter),
            ("01", .trailingContent),
            ("1.", .invalidNumber),
            ("-", .invalidNumber),
            ("\"\\x\"", .invalidEscape),
            ("\"\\ud800\"", .invalidEscape),
            ("\"\\udc00\"", .invalidEscape),
            ("\"a\nb\"", .controlCharacter),
            ("tru", .unexpectedEnd),
            ("nul1", .unexpectedCharacter),
            ("{} {}", .trailingContent),
            ("{1:2}", .unexpectedCharacter),
        ]
    )
    func rejects(input: String, code: JSONParseError.Code) {
        #expect(throws: JSONParseError.self) { try JSON.parse(input) }
        do {
            _ = try JSON.parse(input)
        } catch {
            #expect(error.code == code, "\(input.debugDescription): \(error)")
        }
    }

    @Test("invalid UTF-8 inside a string is rejected")
    func invalidUTF8() {
        let bytes: [UInt8] = [UInt8(ascii: "\""), 0xC3, 0x28, UInt8(ascii: "\"")]
        #expect {
            try JSON.parse(bytes)
        } throws: { error in
            (error as? JSONParseError)?.code == .invalidUTF8
        }
    }

    @Test("nesting beyond the limit is rejected, at the limit accepted")
    func depthLimit() throws {
        let atLimit = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        let beyond = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(try JSON.parse(atLimit).depth == 64)
        #expect {
            try JSON.parse(beyond)
        } throws: { error in
            (error as? JSONParseError)?.code == .tooDeep
        }
        #expect(try JSON.parse(beyond, options: JSONParseOptions(maxDepth: 100)).depth == 65)
    }

    @Test("errors report line and column")
    func errorPosition() {
        do {
            _ = try JSON.parse("{\n  \"a\": tru\n}")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 2)
            #expect(error.column == 11)
        }
    }

    @Test("object editing keeps order and replaces in place")
    func objectEditing() {
        var object = JSONObject([JSONMember("a", 1), JSONMember("b", 2)])
        object["a"] = "x"
        object["c"] = true
        object["b"] = nil
        #expect(object.keys == ["a", "c"])
        #expect(JSON.object(object).text() == #"{"a":"x","c":true}"#)
    }

    @Test("number literals are checked")
    func numberLiterals() {
        #expect(JSONNumber("1.50")?.text == "1.50")
        #expect(JSONNumber("1.") == nil)
        #expect(JSONNumber("+1") == nil)
        #expect(JSONNumber("00") == nil)
        #expect(JSONNumber(42).intValue == 42)
    }
}
