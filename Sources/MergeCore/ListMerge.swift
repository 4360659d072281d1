import FHIRJSON

/// The merge key of one list item: which key alternative matched, and the values of its parts.
struct ItemKey: Hashable {
    var alternative: Int
    var parts: [KeyPart]
}

/// The value a conflicting element keeps (absent when `nil`).
struct Held {
    var value: JSON?
}

/// One part of a merge key: the value at a key path (for a choice element, with the variant's name).
struct KeyPart: Hashable {
    var choiceName: String?
    var value: JSON
}

extension Merger {
    // MARK: keyed-list

    /// Merges a list item by item, matching items by their merge key. `oneSided` is the side that changed
    /// the list when only one did (the list is walked because safety or record guards sit inside it).
    mutating func mergeKeyedList(
        _ b: JSON?, _ o: JSON?, _ t: JSON?, oneSided: MergeSide?, node: PolicyNode, rule: MergeRule, inherited: MergeRule
    ) -> JSON? {
        let bItems = b?.arrayValue ?? []
        let oItems = o?.arrayValue ?? []
        let tItems = t?.arrayValue ?? []
        var keys: [[ItemKey]] = []
        var indexes: [[ItemKey: Int]] = []
        for (side, items) in [("base", bItems), ("ours", oItems), ("theirs", tItems)] {
            switch itemKeys(items, node) {
            case .failure(let problem):
                return unmatchableList(b, o, t, oneSided: oneSided, node: node, rule: rule, reason: "\(problem) in \(side)")
            case .success(let sideKeys):
                switch index(sideKeys) {
                case .failure(let duplicate):
                    let reason = "two items in \(side) share the merge key [\(Merger.render(duplicate.key))], so the list cannot be merged item by item"
                    return unmatchableList(b, o, t, oneSided: oneSided, node: node, rule: rule, reason: reason)
                case .success(let sideIndex):
                    keys.append(sideKeys)
                    indexes.append(sideIndex)
                }
            }
        }
        let (bKeys, oKeys, tKeys) = (keys[0], keys[1], keys[2])
        let (bIndex, oIndex, tIndex) = (indexes[0], indexes[1], indexes[2])

        let primaryIsTheirs = oneSided == .theirs
        let (firstKeys, secondKeys) = primaryIsTheirs ? (tKeys, oKeys) : (oKeys, tKeys)
        let firstIndex = primaryIsTheirs ? tIndex : oIndex
        var result: [JSON] = []
        result.reserveCapacity(max(oItems.count, tItems.count) + 1)
        for key in firstKeys {
            mergeItem(key, bIndex, bItems, oIndex, oItems, tIndex, tItems, node: node, rule: rule, inherited: inherited, into: &result)
        }
        for key in secondKeys where firstIndex[key] == nil {
            mergeItem(key, bIndex, bItems, oIndex, oItems, tIndex, tItems, node: node, rule: rule, inherited: inherited, into: &result)
        }
        // Items removed on both sides.
        if !twoWay {
            for key in bKeys where oIndex[key] == nil && tIndex[key] == nil {
                path.append(.item(key))
                decide(.both, rule.id, "removed on both sides")
                path.removeLast()
            }
        }
        guard !result.isEmpty else { return nil }
        return .array(result)
    }

    private mutating func mergeItem(
        _ key: ItemKey, _ bIndex: [ItemKey: Int], _ bItems: [JSON], _ oIndex: [ItemKey: Int], _ oItems: [JSON],
        _ tIndex: [ItemKey: Int], _ tItems: [JSON], node: PolicyNode, rule: MergeRule, inherited: MergeRule, into result: inout [JSON]
    ) {
        let bv = bIndex[key].map { bItems[$0] }
        let ov = oIndex[key].map { oItems[$0] }
        let tv = tIndex[key].map { tItems[$0] }
        path.append(.item(key))
        defer { path.removeLast() }
        switch (ov, tv) {
        case (nil, nil):
            return
        case (nil, let tv?):
            guard let bv else {
                decide(.theirs, rule.id, addition(by: .theirs))
                result.append(tv)
                return
            }
            if tv == bv {
                decide(.ours, rule.id, "removed by ours")
            } else if let kept = conflict(SafetyRules.deleteVersusEdit, "removed by ours but changed by theirs", bv, nil, tv) {
                result.append(kept)
            }
        case (let ov?, nil):
            guard let bv else {
                decide(.ours, rule.id, addition(by: .ours))
                result.append(ov)
                return
            }
            if ov == bv {
                decide(.theirs, rule.id, "removed by theirs")
            } else if let kept = conflict(SafetyRules.deleteVersusEdit, "removed by theirs but changed by ours", bv, ov, nil) {
                result.append(kept)
            }
        case (let ov?, let tv?):
            if let merged = mergeNode(bv, ov, tv, node: node, rule: inherited, inherited: inherited) {
                result.append(merged)
            }
        }
    }

    /// A keyed list whose items cannot be matched (a missing or duplicate key). Changed on one side only:
    /// that side's list is taken, unless a guarded element inside it changed. Changed on both: a conflict.
    private mutating func unmatchableList(
        _ b: JSON?, _ o: JSON?, _ t: JSON?, oneSided: MergeSide?, node: PolicyNode, rule: MergeRule, reason: String
    ) -> JSON? {
        guard let side = oneSided else {
            return conflict(rule, reason, b, o, t)
        }
        if let held = guardedSubtreeConflict(b, o, t, node: node, reason: reason) {
            return held.value
        }
        let changed = side == .theirs ? t : o
        decide(side == .theirs ? .theirs : .ours, rule.id, Merger.changeDescription(b, changed, by: side))
        return changed
    }

    private func itemKeys(_ items: [JSON], _ node: PolicyNode) -> Result<[ItemKey], KeyProblem> {
        var keys: [ItemKey] = []
        keys.reserveCapacity(items.count)
        for (position, item) in items.enumerated() {
            guard let key = Merger.key(of: item, node.keyPaths) else {
                let alternatives = node.keyPaths.map { $0.map { $0.joined(separator: ".") }.joined(separator: "+") }
                return .failure(KeyProblem(description: "item \(position + 1) has none of the merge keys (\(alternatives.joined(separator: ", ")))"))
            }
            keys.append(key)
        }
        return .success(keys)
    }

    private func index(_ keys: [ItemKey]) -> Result<[ItemKey: Int], DuplicateKey> {
        var index: [ItemKey: Int] = [:]
        index.reserveCapacity(keys.count)
        for (position, key) in keys.enumerated() {
            guard index.updateValue(position, forKey: key) == nil else { return .failure(DuplicateKey(key: key)) }
        }
        return .success(index)
    }

    /// The first key alternative whose parts are all present in `item`.
    static func key(of item: JSON, _ alternatives: [[[String]]]) -> ItemKey? {
        guard case .object = item else { return nil }
        alternativeLoop: for (number, alternative) in alternatives.enumerated() {
            var parts: [KeyPart] = []
            parts.reserveCapacity(alternative.count)
            for partPath in alternative {
                guard let part = value(at: partPath, in: item) else { continue alternativeLoop }
                parts.append(part)
            }
            return ItemKey(alternative: number, parts: parts)
        }
        return nil
    }

    /// The value at `path` inside `item` (objects only); a `name[x]` segment matches any variant.
    static func value(at path: [String], in item: JSON) -> KeyPart? {
        var current = item
        var choiceName: String?
        for segment in path {
            guard case .object(let object) = current else { return nil }
            if segment.hasSuffix("[x]") {
                let prefix = String(segment.dropLast(3))
                guard let member = object.members.first(where: { PolicyNode.matchesChoice($0.key, prefix: prefix) }) else { return nil }
                current = member.value
                choiceName = member.key
            } else {
                guard let next = object[segment] else { return nil }
                current = next
                choiceName = nil
            }
        }
        return KeyPart(choiceName: choiceName, value: current)
    }

    /// A merge key as a path segment: its parts joined by `|`.
    static func render(_ key: ItemKey) -> String {
        key.parts.map { render($0.value) }.joined(separator: "|")
    }

    /// A short, readable name for a value used as a key: a string as itself; a Reference by its target;
    /// an Identifier as system|value; a Coding or CodeableConcept by its first code; otherwise compact JSON.
    static func render(_ value: JSON) -> String {
        switch value {
        case .string(let text): return text
        case .number(let number): return number.text
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "null"
        case .array(let elements): return elements.map(render).joined(separator: ",")
        case .object(let object):
            if let reference = object["reference"]?.stringValue { return reference }
            if let system = object["system"]?.stringValue {
                if let code = object["code"]?.stringValue { return system + "|" + code }
                if let identifierValue = object["value"]?.stringValue { return system + "|" + identifierValue }
            }
            if let code = object["code"]?.stringValue { return code }
            if let identifierValue = object["value"]?.stringValue { return identifierValue }
            if let coding = object["coding"]?.arrayValue?.first { return render(coding) }
            if let identifier = object["identifier"] { return render(identifier) }
            if let text = object["text"]?.stringValue { return shortened(text) }
            return shortened(value.text(.canonical))
        }
    }

    static func shortened(_ text: String, limit: Int = 60) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }

    // MARK: set and append-only

    /// `set`: both sides' additions, minus both sides' removals. `append-only`: both sides' items, no removals.
    /// Items are whole values; the order is ours, then theirs' additions.
    mutating func mergeSet(_ b: JSON?, _ o: JSON?, _ t: JSON?, rule: MergeRule, appendOnly: Bool) -> JSON? {
        let oItems = o?.arrayValue ?? []
        let tItems = t?.arrayValue ?? []
        let bItems = twoWay ? [] : (b?.arrayValue ?? [])
        let oSet = Set(oItems)
        let tSet = Set(tItems)
        let bSet = Set(bItems)
        for (side, items, set) in [("ours", oItems, oSet), ("theirs", tItems, tSet)] where set.count != items.count {
            let duplicate = Merger.firstDuplicate(items)
            return conflict(rule, "\(side) lists the same item twice (\(Merger.render(duplicate))); the list is not merged item by item", b, o, t)
        }
        var result: [JSON] = []
        result.reserveCapacity(oItems.count + tItems.count)
        for item in oItems {
            let inBase = bSet.contains(item)
            let inTheirs = tSet.contains(item)
            if inBase && !inTheirs {
                if appendOnly {
                    result.append(item)
                    itemDecision(item, .ours, rule, "removed by theirs but kept: this list is append-only")
                } else {
                    itemDecision(item, .theirs, rule, "removed by theirs")
                }
                continue
            }
            result.append(item)
            if !inBase {
                itemDecision(item, inTheirs ? .both : .ours, rule, inTheirs ? "added on both sides" : addition(by: .ours))
            }
        }
        for item in tItems where !oSet.contains(item) {
            if bSet.contains(item) {
                if appendOnly {
                    result.append(item)
                    itemDecision(item, .theirs, rule, "removed by ours but kept: this list is append-only")
                } else {
                    itemDecision(item, .ours, rule, "removed by ours")
                }
                continue
            }
            result.append(item)
            itemDecision(item, .theirs, rule, addition(by: .theirs))
        }
        if !appendOnly {
            for item in bItems where !oSet.contains(item) && !tSet.contains(item) {
                itemDecision(item, .both, rule, "removed on both sides")
            }
        }
        guard !result.isEmpty else { return nil }
        return .array(result)
    }

    private mutating func itemDecision(_ item: JSON, _ took: MergeDecision.Took, _ rule: MergeRule, _ explanation: String) {
        path.append(.value(item))
        decide(took, rule.id, explanation)
        path.removeLast()
    }

    static func firstDuplicate(_ items: [JSON]) -> JSON {
        var seen: Set<JSON> = []
        for item in items where !seen.insert(item).inserted { return item }
        return .null
    }

    // MARK: Guarded elements that cannot be matched

    /// The coarse check for an element taken as a whole although guarded elements sit inside it (a list
    /// whose items cannot be matched, or a value that is not an object): entered-in-error must be the same
    /// on both sides, and when both sides changed the record no never-auto or status-machine value inside
    /// may have changed. Records the conflict and returns the value kept there when the check fails, `nil`
    /// when it passes.
    mutating func guardedSubtreeConflict(_ b: JSON?, _ o: JSON?, _ t: JSON?, node: PolicyNode, reason: String) -> Held? {
        let (safetyPaths, recordGuards) = node.guardedPaths()
        if !safetyPaths.isEmpty {
            func retracted(_ value: JSON?) -> [[UInt8]] {
                let items = value?.arrayValue ?? value.map { [$0] } ?? []
                return items.filter { item in
                    safetyPaths.contains { Merger.values(at: $0[...], in: item).contains(where: SafetyRules.isEnteredInError) }
                }.map(\.canonicalBytes).sorted { $0.lexicographicallyPrecedes($1) }
            }
            if retracted(o) != retracted(t) {
                return Held(value: conflict(SafetyRules.enteredInError, "entered-in-error differs between the sides inside this element, and \(reason)", b, o, t))
            }
        }
        if changedOnBothSides {
            for (guarded, rule) in recordGuards {
                func found(_ value: JSON?) -> [[UInt8]] {
                    guard let value else { return [] }
                    return Merger.values(at: guarded[...], in: value).map(\.canonicalBytes).sorted { $0.lexicographicallyPrecedes($1) }
                }
                let baseValues = found(b)
                if found(o) != baseValues || found(t) != baseValues {
                    return Held(value: conflict(rule, "\(guarded.joined(separator: ".")) changed inside this element while both sides edited the record, and \(reason)", b, o, t))
                }
            }
        }
        return nil
    }

    /// Every value at `path` below `value`, looking through lists at each step.
    static func values(at path: ArraySlice<String>, in value: JSON) -> [JSON] {
        switch value {
        case .array(let elements):
            return elements.flatMap { values(at: path, in: $0) }
        case .object(let object):
            guard let segment = path.first else { return [value] }
            if segment.hasSuffix("[x]") {
                let prefix = String(segment.dropLast(3))
                return object.members.filter { PolicyNode.matchesChoice($0.key, prefix: prefix) }.flatMap { values(at: path.dropFirst(), in: $0.value) }
            }
            guard let next = object[segment] else { return [] }
            return values(at: path.dropFirst(), in: next)
        default:
            return path.isEmpty ? [value] : []
        }
    }
}

private struct KeyProblem: Error, CustomStringConvertible {
    let description: String
}

private struct DuplicateKey: Error {
    let key: ItemKey
}
