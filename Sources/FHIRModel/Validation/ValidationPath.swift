/// A location in a resource, kept as components and written out only when an issue is reported:
/// `CarePlan.activity[1].detail.status`.
struct ValidationPath: Sendable, CustomStringConvertible {
    enum Component: Sendable {
        case name(String)
        case index(Int)
    }

    private(set) var components: [Component]

    /// A path at the root, e.g. `CarePlan`.
    init(root: String) {
        components = [.name(root)]
        components.reserveCapacity(16)
    }

    mutating func push(_ name: String) { components.append(.name(name)) }
    mutating func push(index: Int) { components.append(.index(index)) }
    mutating func pop() { components.removeLast() }

    /// The path with `name` appended, written out: `CarePlan.period` + `end` → `CarePlan.period.end`.
    func appending(_ name: String) -> String { "\(description).\(name)" }

    var description: String {
        var text = ""
        for component in components {
            switch component {
            case .name(let name):
                if !text.isEmpty { text += "." }
                text += name
            case .index(let index):
                text += "[\(index)]"
            }
        }
        return text
    }
}
