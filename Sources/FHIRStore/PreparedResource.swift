import FHIRJSON

/// A resource made ready for storage before the write transaction starts: serialised except for what
/// only the writer knows (`id` for creates, `meta.versionId`, `meta.lastUpdated`), and its search index
/// rows computed. The single writer then only splices bytes and runs SQL.
struct PreparedResource: Sendable {
    let type: String
    /// The resource as received (Bundle transactions rewrite its references).
    let resource: JSONObject
    /// The `meta` members other than `versionId` and `lastUpdated`, serialised, each after a comma.
    private let otherMeta: [UInt8]
    /// The members other than `resourceType`, `id` and `meta`, serialised, each after a comma.
    private let otherMembers: [UInt8]
    /// Search index rows (identifiers, patient and subject references).
    let tokens: [SearchToken]

    init(_ resource: JSONObject, type: String) {
        self.type = type
        self.resource = resource
        var rest = resource
        rest["resourceType"] = nil
        rest["id"] = nil
        rest["meta"] = nil
        otherMembers = Self.innerMembers(rest)
        if var meta = resource["meta"]?.objectValue {
            meta["versionId"] = nil
            meta["lastUpdated"] = nil
            otherMeta = Self.innerMembers(meta)
        } else {
            otherMeta = []
        }
        tokens = SearchParameters.tokens(of: resource, type: type)
    }

    /// The stored JSON: `resourceType`, `id`, `meta` (server `versionId` and `lastUpdated` first), then the rest.
    func stored(id: String, version: Int, lastUpdated: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(otherMembers.count + otherMeta.count + 128)
        out += #"{"resourceType":"#.utf8
        out += JSON.string(type).serialized()
        out += #","id":"#.utf8
        out += JSON.string(id).serialized()
        out += #","meta":{"versionId":""#.utf8
        out += String(version).utf8
        out += #"","lastUpdated":"#.utf8
        out += JSON.string(lastUpdated).serialized()
        out += otherMeta
        out.append(UInt8(ascii: "}"))
        out += otherMembers
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// `,"a":1,"b":2` for `{"a":1,"b":2}`; empty for `{}`.
    private static func innerMembers(_ object: JSONObject) -> [UInt8] {
        guard !object.isEmpty else { return [] }
        var bytes = JSON.object(object).serialized()
        bytes[0] = UInt8(ascii: ",")
        bytes.removeLast()
        return bytes
    }
}
