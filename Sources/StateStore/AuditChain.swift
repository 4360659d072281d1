import COpenSSL

/// The audit log's hash chain: each entry stores `SHA-256(previous hash ‖ canonical content)`; the first
/// entry's previous hash is 32 zero bytes. Editing, deleting or reordering an entry breaks a link.
enum AuditChain {
    static let genesis = [UInt8](repeating: 0, count: 32)

    /// The fields of one entry, in the order and form the hash covers.
    struct Content {
        var sequence: Int64
        var at: Int64
        var actor: String
        var action: String
        var peer: String?
        var recordKey: String?
        var nhsNumber: String?
        var requestID: String?
        var detail: String

        /// `caresync-audit-v1` then one `name:length:value` line per field (`name:-` for absent), so
        /// no two different entries share a canonical form.
        var canonicalBytes: [UInt8] {
            var bytes = Array("caresync-audit-v1\n".utf8)
            func field(_ name: String, _ value: String?) {
                bytes.append(contentsOf: name.utf8)
                bytes.append(UInt8(ascii: ":"))
                if let value {
                    bytes.append(contentsOf: String(value.utf8.count).utf8)
                    bytes.append(UInt8(ascii: ":"))
                    bytes.append(contentsOf: value.utf8)
                } else {
                    bytes.append(UInt8(ascii: "-"))
                }
                bytes.append(UInt8(ascii: "\n"))
            }
            field("seq", String(sequence))
            field("at", String(at))
            field("actor", actor)
            field("action", action)
            field("peer", peer)
            field("record", recordKey)
            field("nhs", nhsNumber)
            field("request", requestID)
            field("detail", detail)
            return bytes
        }
    }

    static func hash(previous: [UInt8], content: Content) -> [UInt8] {
        sha256(previous + content.canonicalBytes)
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { input in
            digest.withUnsafeMutableBufferPointer { output in
                EVP_Digest(input.baseAddress, input.count, output.baseAddress, &length, EVP_sha256(), nil)
            }
        }
        precondition(ok == 1 && length == 32, "OpenSSL SHA-256 failed")
        return Array(digest[0..<32])
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
