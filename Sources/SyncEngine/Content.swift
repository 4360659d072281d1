public import FHIRJSON

/// Comparing and preparing resource content across peers. `id` and `meta.versionId` /
/// `meta.lastUpdated` are each peer's own: they never count as content and never travel.
public enum ResourceContent {
    /// `resource` without `id`, `meta.versionId` and `meta.lastUpdated` (and without `meta` when
    /// nothing else is left in it).
    public static func withoutServerFields(_ resource: JSON) -> JSON {
        guard case .object(var object) = resource else { return resource }
        object["id"] = nil
        if case .object(var meta)? = object["meta"] {
            meta["versionId"] = nil
            meta["lastUpdated"] = nil
            object["meta"] = meta.isEmpty ? nil : .object(meta)
        }
        return .object(object)
    }

    /// Whether two versions say the same thing: equal once server fields are set aside, member order
    /// ignored (FHIRJSON equality is by meaning).
    public static func sameMeaning(_ a: JSON?, _ b: JSON?) -> Bool {
        switch (a, b) {
        case (nil, nil): true
        case (let a?, let b?): withoutServerFields(a) == withoutServerFields(b)
        default: false
        }
    }

    /// The body to send to a peer: the content with the target's `id` (after `resourceType`) for an
    /// update, or none for a create; no server metadata.
    public static func body(_ resource: JSON, targetID: String?) -> [UInt8] {
        guard case .object(let object) = withoutServerFields(resource) else { return resource.serialized() }
        var members: [JSONMember] = []
        members.reserveCapacity(object.count + 1)
        for member in object.members {
            members.append(member)
            if member.key == "resourceType", let targetID { members.append(JSONMember("id", .string(targetID))) }
        }
        return JSON.object(JSONObject(membersWithUniqueKeys: members)).serialized()
    }

    /// Parses stored bytes (content the engine wrote or received and stored); `nil` when unreadable.
    static func parse(_ bytes: [UInt8]?) -> JSON? {
        guard let bytes else { return nil }
        return try? JSON.parse(bytes, options: JSONParseOptions(maxDepth: 128))
    }
}

/// A resource as stored bytes, as a parsed tree, or both: parsed at most once, and only when a decision
/// needs the tree (content compared byte for byte with what caresync wrote needs no parsing).
final class LazyResource {
    let bytes: [UInt8]?
    private var parsed: JSON??

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    init(json: JSON) {
        self.bytes = nil
        self.parsed = .some(json)
    }

    /// The tree; `nil` when the bytes are not readable JSON.
    var json: JSON? {
        if let parsed { return parsed }
        let tree = ResourceContent.parse(bytes)
        parsed = .some(tree)
        return tree
    }
}
