import CustodyCore

/// The bodies of the API's POST routes, as sent: checked for JSON types only. The core
/// operations validate the values.

/// `POST /api/tasks`.
struct CreateTaskBody: Decodable {
    var orderId: String?
    var payload: JSONValue?
    var uuid: String?

    init(from decoder: any Decoder) throws {
        let fields = try decoder.fields()
        orderId = try fields.string("order_id")
        payload = try fields.json("payload")
        uuid = try fields.string("uuid")
    }
}

/// `POST /api/tasks/updateStatus`.
struct UpdateStatusBody: Decodable {
    var taskId: String?
    var status: String?

    init(from decoder: any Decoder) throws {
        let fields = try decoder.fields()
        taskId = try fields.string("task_id")
        status = try fields.string("status")
    }
}

/// `POST /api/tasks/errors`.
struct FactoryErrorBody: Decodable {
    var source: String?
    var message: String?
    var orderId: String?
    var taskUUID: String?
    var errorType: String?
    var payload: JSONValue?

    init(from decoder: any Decoder) throws {
        let fields = try decoder.fields()
        source = try fields.string("source")
        message = try fields.string("message")
        orderId = try fields.string("order_id")
        taskUUID = try fields.string("task_uuid")
        errorType = try fields.string("error_type")
        payload = try fields.json("payload")
    }
}

/// `POST /api/delivery/{order_id}/followups`.
struct FollowupBody: Decodable {
    var type: String?
    var note: String?
    var impact: String?

    init(from decoder: any Decoder) throws {
        let fields = try decoder.fields()
        type = try fields.string("type")
        note = try fields.string("note")
        impact = try fields.string("impact")
    }
}

/// `POST /api/traces/replay/{trace_id}` (an empty body is `{}`).
struct ReplayBody: Decodable {
    var mode: String?
    var speed: Double?

    init() {}

    init(from decoder: any Decoder) throws {
        let fields = try decoder.fields()
        mode = try fields.string("mode")
        speed = try fields.number("speed")
    }
}

/// `POST /api/github/files`.
struct UpsertFileBody: Decodable {
    var change: GitHubFileChange

    init(from decoder: any Decoder) throws {
        let fields = try decoder.fields()
        change = GitHubFileChange(
            path: try fields.string("path"),
            content: try fields.string("content"),
            message: try fields.string("message"),
            owner: try fields.string("owner"),
            repo: try fields.string("repo"),
            branch: try fields.string("branch")
        )
    }
}

/// `POST /api/github/pulls`.
struct OpenPullRequestBody: Decodable {
    var draft: GitHubPullRequestDraft

    init(from decoder: any Decoder) throws {
        let fields = try decoder.fields()
        draft = GitHubPullRequestDraft(
            title: try fields.string("title"),
            head: try fields.string("head"),
            base: try fields.string("base"),
            body: try fields.string("body"),
            owner: try fields.string("owner"),
            repo: try fields.string("repo")
        )
    }
}

/// `POST /api/github/issues`.
struct CreateIssueBody: Decodable {
    var draft: GitHubIssueDraft

    init(from decoder: any Decoder) throws {
        let fields = try decoder.fields()
        draft = GitHubIssueDraft(
            title: try fields.string("title"),
            body: try fields.string("body"),
            labels: try fields.strings("labels"),
            owner: try fields.string("owner"),
            repo: try fields.string("repo")
        )
    }
}

/// `POST /api/admin/backup`.
struct BackupBody: Decodable {
    var to: String?
    var includeKey: Bool?

    init(from decoder: any Decoder) throws {
        let fields = try decoder.fields()
        to = try fields.string("to")
        includeKey = try fields.boolean("include_key")
    }
}
