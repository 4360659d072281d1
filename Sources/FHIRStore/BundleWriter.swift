import FHIRJSON

/// Writes a Bundle straight to bytes, splicing stored resources in as they are (no re-parse).
///
/// Members come in the order FHIR shows them: `resourceType, id, meta, type, total, link, entry`.
/// An empty `entry` list is left out (FHIR JSON has no empty arrays).
struct BundleWriter {
    private var out: [UInt8] = []
    private var entries = 0

    /// Starts a Bundle of `type` (`searchset`, `history`, `batch-response`, `transaction-response`).
    init(type: String, lastUpdated: String? = nil, total: Int? = nil, links: [(relation: String, url: String)] = []) {
        out.reserveCapacity(4096)
        out += #"{"resourceType":"Bundle","id":"#.utf8
        string(UUIDText.random())
        if let lastUpdated {
            out += #","meta":{"lastUpdated":"#.utf8
            string(lastUpdated)
            out.append(UInt8(ascii: "}"))
        }
        out += #","type":"#.utf8
        string(type)
        if let total { out += #","total":\#(total)"#.utf8 }
        if !links.isEmpty {
            out += #","link":["#.utf8
            for (position, link) in links.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                out += #"{"relation":"#.utf8
                string(link.relation)
                out += #","url":"#.utf8
                string(link.url)
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "]"))
        }
    }

    /// Adds an entry: `fullUrl`, the resource bytes as stored, then `members` (search, request, response).
    mutating func addEntry(fullUrl: String?, resource: [UInt8]?, members: [JSONMember] = []) {
        out += (entries == 0 ? #","entry":[{"# : #",{"#).utf8
        entries += 1
        var first = true
        func separator() {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
        }
        if let fullUrl {
            separator()
            out += #""fullUrl":"#.utf8
            string(fullUrl)
        }
        if let resource {
            separator()
            out += #""resource":"#.utf8
            out += resource
        }
        for member in members {
            separator()
            string(member.key)
            out.append(UInt8(ascii: ":"))
            out += member.value.serialized()
        }
        out.append(UInt8(ascii: "}"))
    }

    /// The finished Bundle.
    consuming func finish() -> [UInt8] {
        if entries > 0 { out.append(UInt8(ascii: "]")) }
        out.append(UInt8(ascii: "}"))
        return out
    }

    private mutating func string(_ text: String) {
        out += JSON.string(text).serialized()
    }
}
