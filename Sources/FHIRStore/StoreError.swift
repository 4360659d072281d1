import FHIRJSON

/// One `OperationOutcome.issue`: what went wrong, where, in words.
struct OutcomeIssue: Sendable, Hashable {
    /// `fatal | error | warning | information`.
    var severity: String = "error"
    /// An R4 `IssueType` code (`invalid`, `structure`, `not-found`, `conflict`, …).
    var code: String
    /// A sentence naming the field and the rule.
    var diagnostics: String
    /// FHIRPath locations of the problem, e.g. `CarePlan.id`.
    var expression: [String] = []

    var json: JSON {
        var issue = JSONObject()
        issue["severity"] = .string(severity)
        issue["code"] = .string(code)
        issue["diagnostics"] = .string(diagnostics)
        if !expression.isEmpty { issue["expression"] = .array(expression.map { .string($0) }) }
        return .object(issue)
    }
}

/// Why the store refused a request: an HTTP status and the OperationOutcome that explains it.
struct StoreError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status code.
    var status: Int
    /// The issues; never empty.
    var issues: [OutcomeIssue]
    /// Seconds for a `Retry-After` header (429 and 503).
    var retryAfter: Int?

    init(_ status: Int, _ code: String, _ diagnostics: String, expression: [String] = [], retryAfter: Int? = nil) {
        self.status = status
        self.issues = [OutcomeIssue(code: code, diagnostics: diagnostics, expression: expression)]
        self.retryAfter = retryAfter
    }

    init(status: Int, issues: [OutcomeIssue]) {
        self.status = status
        self.issues = issues
    }

    /// The stable code of the first issue (an R4 IssueType).
    var code: String { issues.first?.code ?? "exception" }

    /// The diagnostics of every issue, joined.
    var message: String { issues.map(\.diagnostics).joined(separator: "; ") }

    /// `HTTP 409 conflict: version conflict: …`.
    var description: String { "HTTP \(status) \(code): \(message)" }

    /// This error with every diagnostic prefixed (used to name the failing Bundle entry).
    func prefixed(_ prefix: String) -> StoreError {
        var copy = self
        copy.issues = issues.map { issue in
            var issue = issue
            issue.diagnostics = prefix + issue.diagnostics
            return issue
        }
        return copy
    }

    /// The `OperationOutcome` resource.
    var outcome: JSON { OperationOutcome.make(issues) }

    static func notFound(_ diagnostics: String) -> StoreError { StoreError(404, "not-found", diagnostics) }
    static func invalid(_ diagnostics: String, expression: [String] = []) -> StoreError {
        StoreError(400, "invalid", diagnostics, expression: expression)
    }
}

/// Builds `OperationOutcome` resources.
enum OperationOutcome {
    static func make(_ issues: [OutcomeIssue]) -> JSON {
        ["resourceType": "OperationOutcome", "issue": .array(issues.map(\.json))]
    }
}

/// Reason phrases for the statuses the store sends (`response.status` in Bundles reads `201 Created`).
enum HTTPStatusText {
    static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 409: "Conflict"
        case 410: "Gone"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        default: "Status \(status)"
        }
    }

    /// `201 Created`.
    static func line(_ status: Int) -> String { "\(status) \(reason(status))" }
}
