import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOHTTP1

/// What the live stream sends a client (docs/api.md, "Live stream").
public enum LiveMessage: Sendable, Hashable {
    /// A new span (or, after `since_seq`, one read back from the log).
    case span(SpanRecord)
    /// The client fell behind and this many spans were dropped for it.
    case lagged(dropped: Int)
}

/// Which spans the live stream sends: each list allows any of its values (empty: every value).
public struct LiveFilter: Sendable, Hashable {
    public var source: [String]
    public var stage: [String]
    public var operation: [String]
    public var traceId: [String]

    public init(source: [String] = [], stage: [String] = [], operation: [String] = [], traceId: [String] = []) {
        self.source = source
        self.stage = stage
        self.operation = operation
        self.traceId = traceId
    }

    var query: [(String, String)] {
        [("source", source), ("stage", stage), ("operation", operation), ("trace_id", traceId)].flatMap { name, values in
            values.map { (name, $0) }
        }
    }
}

extension CustodyClient {
    /// Follows the live stream (`GET /api/traces/live?batch=1`): `receive` gets every span the filter lets
    /// through — first, with `sinceSeq`, every one after that seq from the log — and every
    /// `lagged` notice, in order, until the server closes the stream, `receive` throws, or the
    /// task is cancelled. The bearer token goes with the upgrade request. A refused upgrade is
    /// reported with the server's own error (asked for once more without the upgrade).
    public func followLive(
        _ filter: LiveFilter = LiveFilter(),
        sinceSeq: UInt64? = nil,
        logger: Logger = Logger(label: "custody.client.live"),
        receive: @escaping @Sendable (LiveMessage) async throws -> Void
    ) async throws(CustodyClientError) {
        var query = filter.query
        if let sinceSeq { query.append(("since_seq", String(sinceSeq))) }
        // Frames of spans: one frame per 20 ms under load instead of one per span.
        query.append(("batch", "1"))
        let path = "/api/traces/live"
        let url =
            baseURL.replacingOccurrences(of: "http://", with: "ws://").replacingOccurrences(of: "https://", with: "wss://") + path
            + (query.isEmpty ? "" : "?" + query.map { "\($0)=\(Self.percentEncoded($1))" }.joined(separator: "&"))
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        do {
            try await WebSocketClient.connect(
                url: url,
                configuration: .init(maxFrameSize: 16 << 20, additionalHeaders: headers),
                logger: logger
            ) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 16 << 20) {
                    guard case .text(let text) = message, let frame = try? Self.decoder.decode(LiveFrame.self, from: Data(text.utf8)) else {
                        continue
                    }
                    switch frame.event {
                    case "trace", "traces":
                        for span in frame.spans { try await receive(.span(span)) }
                    case "lagged":
                        try await receive(.lagged(dropped: frame.dropped ?? 0))
                    default:
                        break
                    }
                }
            }
        } catch let error as CustodyClientError {
            throw error
        } catch let error as WebSocketClientError where error == .webSocketUpgradeFailed {
            // Why: the same request without the upgrade gets the API's answer (426 when the
            // request itself was fine).
            do {
                _ = try await exchange(.GET, path, query: query.map { ($0, $1) }, body: nil)
            } catch  where error.status != 426 {
                throw error
            }
            throw CustodyClientError(status: 0, code: "upgrade_failed", message: "\(baseURL) refused the live stream's WebSocket upgrade")
        } catch {
            throw CustodyClientError(status: 0, code: "unreachable", message: "\(baseURL) could not be reached for the live stream: \(error)")
        }
    }

    /// A frame of the live stream: `{"event": "traces", "data": [Span, …]}` (asked for with
    /// `batch=1`), `{"event": "trace", "data": Span}`, `{"event": "lagged", "dropped": n}`,
    /// `{"event": "ping", "t": ms}`.
    struct LiveFrame: Decodable {
        var event: String
        var spans: [SpanRecord] = []
        var dropped: Int?

        enum CodingKeys: String, CodingKey { case event, data, dropped }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            event = try container.decode(String.self, forKey: .event)
            dropped = try container.decodeIfPresent(Int.self, forKey: .dropped)
            switch event {
            case "traces": spans = try container.decodeIfPresent([SpanRecord].self, forKey: .data) ?? []
            case "trace": spans = try container.decodeIfPresent(SpanRecord.self, forKey: .data).map { [$0] } ?? []
            default: break
            }
        }
    }
}

extension SpanRecord {
    /// Whether this is an error span (docs/api.md): stage `error` or `replay_error`, or
    /// `details.error` present.
    public var isError: Bool { stage == "error" || stage == "replay_error" || details?["error"] != nil }
}
