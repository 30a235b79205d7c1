import CustodyCore

/// The bodies of the API's POST routes, as sent: checked for JSON types only. The core
/// operations validate the values.

/// `POST /api/logs`: one entry, an array of entries, or `{"entries": [...]}`.
struct LogBody: Decodable {
    var entries: LogOperations.Entries

    init(from decoder: any Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            entries = .many(try Self.decodeList(&list, prefix: "entries"))
            return
        }
        let fields = try decoder.fields()
        if fields.contains(FieldKey("entries")) {
            guard var list = try? fields.nestedUnkeyedContainer(forKey: FieldKey("entries")) else {
                throw CoreError.invalidArgument("entries", "must be an array of entries")
            }
            entries = .many(try Self.decodeList(&list, prefix: "entries"))
        } else {
            entries = .one(try SpanInput(from: decoder))
        }
    }

    static func decodeList(_ list: inout any UnkeyedDecodingContainer, prefix: String) throws -> [SpanInput] {
        var entries: [SpanInput] = []
        if let count = list.count { entries.reserveCapacity(min(count, LogOperations.maximumEntries + 1)) }
        while !list.isAtEnd {
            let position = list.currentIndex
            do {
                entries.append(try list.decode(SpanInput.self))
            } catch let error as CoreError {
                throw error.prefixingField("\(prefix)[\(position)]")
            }
            if entries.count > LogOperations.maximumEntries {
                throw CoreError.invalidArgument(prefix, "holds more than \(LogOperations.maximumEntries) entries")
            }
        }
        return entries
    }
}

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
