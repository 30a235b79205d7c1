import CustodyCore
import HTTPTypes
import Hummingbird
import NIOCore

/// docs/api.md's success envelope, `{"ok": true, "data": …}`.
enum APIEnvelope {
    /// The envelope around `data`, JSON text already written.
    static func ok(raw data: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        var body = ByteBuffer(string: #"{"ok":true,"data":"#)
        var data = data
        body.writeBuffer(&data)
        body.writeString("}")
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: body))
    }

    /// The answer to a write: `data` with the write's `receipt` (docs/api.md, "Custody proofs"),
    /// `null` when it wrote nothing (an idempotent repeat). The `x-custody-receipt` header is
    /// added to every traced answer by ``Router/traced(_:method:runtime:handler:)``.
    static func written(_ data: JSONValue, status: HTTPResponse.Status = .ok, trace: RequestTrace) -> Response {
        var object = data.objectValue ?? [:]
        object["receipt"] = trace.receipt?.jsonValue ?? .null
        return ok(.object(object), status: status)
    }

    static func ok(_ data: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        var body = ByteBuffer(string: #"{"ok":true,"data":"#)
        var encoded = data.jsonText.bytes
        body.writeBuffer(&encoded)
        body.writeString("}")
        return Response(status: status, headers: fields, body: .init(byteBuffer: body))
    }
}
