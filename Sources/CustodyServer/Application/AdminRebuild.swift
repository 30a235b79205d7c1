import CustodyCore

/// The state of `POST /api/admin/rebuild`, shown in `/api/admin/stats`.
actor AdminRebuild {
    private var state: JSONValue = .object(["state": .string("idle")])

    var status: JSONValue { state }
}
