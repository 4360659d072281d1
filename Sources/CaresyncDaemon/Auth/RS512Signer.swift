import COpenSSL
import Synchronization

/// Signs with an RSA private key using RSASSA-PKCS1-v1_5 and SHA-512 (JWS `RS512`), through OpenSSL's
/// `EVP_DigestSign`.
public final class RS512Signer: Sendable {
    /// The key size in bits (at least 2048).
    public let bits: Int
    private let key: Mutex<OpaquePointer>

    /// The smallest RSA key accepted.
    public static let minimumBits = 2048

    /// Loads a PEM private key (PKCS#8 `PRIVATE KEY` or `RSA PRIVATE KEY`). Encrypted keys are refused
    /// (there is no one to type a passphrase); so are non-RSA keys and keys under 2048 bits.
    public init(pem: [UInt8]) throws(AuthError) {
        let loaded = pem.withUnsafeBufferPointer { buffer in
            caresync_private_key_from_pem(buffer.baseAddress, buffer.count)
        }
        guard let loaded else {
            throw AuthError(.invalidKey, "the private key is not an unencrypted PEM private key (\(Self.lastOpenSSLError()))")
        }
        guard caresync_private_key_is_rsa(loaded) == 1 else {
            caresync_private_key_free(loaded)
            throw AuthError(.invalidKey, "RS512 needs an RSA private key")
        }
        let bits = Int(caresync_private_key_bits(loaded))
        guard bits >= Self.minimumBits else {
            caresync_private_key_free(loaded)
            throw AuthError(.invalidKey, "the RSA key has \(bits) bits; at least \(Self.minimumBits) are required")
        }
        self.bits = bits
        self.key = Mutex(loaded)
    }

    deinit {
        key.withLock { caresync_private_key_free($0) }
    }

    /// The RS512 signature of `message`.
    public func sign(_ message: [UInt8]) throws(AuthError) -> [UInt8] {
        let result: [UInt8]? = key.withLock { key in
            var signature = [UInt8](repeating: 0, count: caresync_private_key_signature_size(key))
            var length = signature.count
            let ok = message.withUnsafeBufferPointer { input in
                signature.withUnsafeMutableBufferPointer { output in
                    caresync_sign_rs512(key, input.baseAddress, input.count, output.baseAddress, &length)
                }
            }
            guard ok == 1 else { return nil }
            return Array(signature.prefix(length))
        }
        guard let result else { throw AuthError(.signingFailed, "signing failed (\(Self.lastOpenSSLError()))") }
        return result
    }

    static func lastOpenSSLError() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        caresync_last_openssl_error(&buffer, buffer.count)
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.isEmpty ? "no detail from OpenSSL" : text
    }
}
