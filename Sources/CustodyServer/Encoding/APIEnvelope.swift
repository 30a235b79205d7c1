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
