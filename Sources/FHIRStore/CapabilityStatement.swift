import FHIRJSON

/// The store's `CapabilityStatement` (`GET /fhir/metadata`): what it supports, in FHIR's own terms.
enum CapabilityStatement {
    static let softwareName = "caresync-store"
    static let softwareVersion = "1.0.0"

    static func make(base: String, date: String, configuration: StoreConfiguration) -> JSON {
        let interactions: [JSON] = ["read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type"]
            .map { ["code": .string($0)] }
        let resources: [JSON] = ResourceCheck.supportedTypes.map { type in
            var parameters: [JSON] = [
                parameter("_id", "token", "logical id (comma-separated values match any)"),
                parameter(
                    "_lastUpdated",
                    "date",
                    "meta.lastUpdated with eq, gt, ge, lt, le; repeat for a range; partial dates cover their whole span"
                ),
                parameter("identifier", "token", "business identifier: value, system|value, |value or system|"),
            ]
            for reference in SearchParameters.references(of: type) {
                parameters.append(
                    parameter(
                        reference.name,
                        "reference",
                        "\(type).\(reference.element) (\(reference.targets.joined(separator: " or "))): Type/id or id; "
                            + "\(reference.name):identifier=system|value matches Reference.identifier and conditional references"
                    )
                )
            }
            return [
                "type": .string(type),
                "interaction": .array(interactions),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-supported",
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "searchParam": .array(parameters),
            ]
        }
        let ifMatch = configuration.requireIfMatch ? "required on updates of existing resources (428 without)" : "optional"
        let documentation =
            "Test and sandbox FHIR R4 store for caresync. JSON only. Search: _count (default \(PagingOptions.defaultCount), "
            + "at most \(PagingOptions.maximumCount)), _sort=_lastUpdated|-_lastUpdated (default ascending), _summary=count, "
            + "_total=accurate; unknown parameters are refused (400) unless Prefer: handling=lenient. Paging is keyset on "
            + "(lastUpdated, sequence) through Bundle.link[next]. If-Match: \(ifMatch); a mismatch answers "
            + "\(configuration.versionConflictStatus). History (_since inclusive, newest first) includes deletes."
        var statement: JSON = [
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": .string(date),
            "publisher": "caresync",
            "kind": "instance",
            "software": ["name": .string(softwareName), "version": .string(softwareVersion)],
            "implementation": ["description": "caresync-store", "url": .string(base)],
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json", "json"],
        ]
        statement["rest"] = [
            [
                "mode": "server",
                "documentation": .string(documentation),
                "resource": .array(resources),
                "interaction": [["code": "transaction"], ["code": "batch"], ["code": "history-system"]],
            ]
        ]
        return statement
    }

    private static func parameter(_ name: String, _ type: String, _ documentation: String) -> JSON {
        ["name": .string(name), "type": .string(type), "documentation": .string(documentation)]
    }
}
