import CustodyCore
import HTTPTypes
import Hummingbird
import NIOCore

extension GzipBody {
    /// Whether a request's body is gzip (`Content-Encoding: gzip`) or as it is (none, or
    /// `identity`); any other encoding is 415.
    static func isGzip(_ request: Request) throws -> Bool {
        let encoding = request.headers[.contentEncoding]?.lowercased() ?? "identity"
        guard encoding == "identity" || encoding == "gzip" else {
            throw APIError(
                status: .unsupportedMediaType,
                code: .unsupportedMediaType,
                message: "Content-Encoding \(encoding) is not taken: gzip or none"
            )
        }
        return encoding == "gzip"
    }

    /// A gzip body inflated under `limit`, with the API's errors: 413 once more than the limit
    /// came out, 400 for bytes that are not gzip.
    static func inflateRequestBody(_ body: ByteBuffer, limit: Int) throws -> ByteBuffer {
        do {
            return try inflate(body, limit: limit)
        } catch .tooLarge {
            throw APIError(CoreError(.payloadTooLarge, "the body is over \(limit) bytes once decompressed"))
        } catch {
            throw APIError.invalidJSON("the gzip body is corrupt")
        }
    }
}
