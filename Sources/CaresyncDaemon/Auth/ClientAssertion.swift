public import Foundation
import FHIRJSON

/// A `private_key_jwt` client assertion (RFC 7523, as NHS England's OAuth2 services take it): header
/// `{"alg":"RS512","typ":"JWT"[,"kid"]}`, claims `iss` = `sub` = client id, `aud` = token URL, a random
/// `jti` and `exp` at most five minutes ahead, signed RS512.
public struct ClientAssertion: Sendable {
    /// The longest lifetime an assertion may have.
    public static let maximumLifetime: Duration = .seconds(300)

    /// The `iss` and `sub` claims.
    public var clientID: String
    /// The `aud` claim: the token endpoint URL.
    public var audience: String
    /// The header `kid`, if the authorisation server wants one.
    public var keyID: String?
    /// How long the assertion is valid (clamped to ``maximumLifetime``).
    public var lifetime: Duration

    /// An assertion for `clientID` at `audience`; `lifetime` is clamped to five minutes.
    public init(clientID: String, audience: String, keyID: String? = nil, lifetime: Duration = ClientAssertion.maximumLifetime) {
        self.clientID = clientID
        self.audience = audience
        self.keyID = keyID
        self.lifetime = min(lifetime, Self.maximumLifetime)
    }

    /// The compact JWS: `base64url(header).base64url(claims).base64url(signature)`.
    public func signed(with signer: RS512Signer, now: Date, jti: String = UUID().uuidString.lowercased()) throws(AuthError) -> String {
        var header: [JSONMember] = [JSONMember("alg", "RS512"), JSONMember("typ", "JWT")]
        if let keyID { header.append(JSONMember("kid", .string(keyID))) }
        let expiry = Int(now.timeIntervalSince1970) + Int(lifetime.components.seconds)
        let claims: [JSONMember] = [
            JSONMember("iss", .string(clientID)),
            JSONMember("sub", .string(clientID)),
            JSONMember("aud", .string(audience)),
            JSONMember("jti", .string(jti)),
            JSONMember("exp", .number(JSONNumber(expiry))),
        ]
        let signingInput =
            Base64URL.encode(JSON.object(JSONObject(header)).serialized(.compact)) + "."
            + Base64URL.encode(JSON.object(JSONObject(claims)).serialized(.compact))
        let signature = try signer.sign(Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }
}

/// Base64url without padding (RFC 7515 §2).
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }
}
