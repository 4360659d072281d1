/// How ``JSON/serialized(_:)`` lays out its output.
public enum JSONLayout: Sendable {
    /// No whitespace, members in document order: the wire form.
    case compact
    /// Two-space indentation, members in document order: for people.
    case pretty
    /// No whitespace, object keys sorted by their UTF-8 bytes: the form hashed and compared.
    case canonical
}

extension JSON {
    /// The value as UTF-8 JSON text.
    public func serialized(_ layout: JSONLayout = .compact) -> [UInt8] {
        var writer = JSONByteWriter(layout: layout)
        writer.write(self, indent: 0)
        return writer.out
    }

    /// The value as a JSON `String`.
    public func text(_ layout: JSONLayout = .compact) -> String {
        String(decoding: serialized(layout), as: UTF8.self)
    }

    /// Canonical bytes: sorted keys, no whitespace, numbers as written. Equal values give equal bytes.
    public var canonicalBytes: [UInt8] { serialized(.canonical) }
}

private struct JSONByteWriter {
    let layout: JSONLayout
    var out: [UInt8] = []

    init(layout: JSONLayout) {
        self.layout = layout
        out.reserveCapacity(1024)
    }

    mutating func write(_ value: JSON, indent: Int) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let number): out.append(contentsOf: number.text.utf8)
        case .string(let string): writeString(string)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                write(element, indent: indent + 1)
            }
            if !elements.isEmpty { newline(indent) }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            let members = layout == .canonical ? object.members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) } : object.members
            for (position, member) in members.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                writeString(member.key)
                out.append(UInt8(ascii: ":"))
                if layout == .pretty { out.append(UInt8(ascii: " ")) }
                write(member.value, indent: indent + 1)
            }
            if !members.isEmpty { newline(indent) }
            out.append(UInt8(ascii: "}"))
        }
    }

    mutating func newline(_ indent: Int) {
        guard layout == .pretty else { return }
        out.append(0x0A)
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * 2))
    }

    mutating func writeString(_ string: String) {
        out.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { bytes in
            var runStart = 0
            for position in 0..<bytes.count {
                let byte = bytes[position]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
                runStart = position + 1
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x0C: out.append(UInt8(ascii: "f"))
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        out.append(UInt8(ascii: "\""))
    }
}
