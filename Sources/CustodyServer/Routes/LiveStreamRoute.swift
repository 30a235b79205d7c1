import CustodyCore
import CustodyLog
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `GET /api/traces/live` (docs/api.md "Live stream"): a WebSocket that receives every new span
/// matching its filters as `{"event": "trace", "data": Span}`, a ping every 10 s, and
/// `{"event": "lagged", "dropped": n}` when it fell behind. `since_seq` first replays the log
/// after that seq, then continues live with no gap and no duplicate. The client may send
/// `{"op": "pause"}`, `{"op": "resume"}` (what arrived meanwhile is then read from the log) and
/// `{"op": "filter", "source": [...], "stage": [...], "operation": [...], "trace_id": [...]}`.
struct LiveStreamRoute {
    let runtime: CoreRuntime
    /// Spans buffered per client before it counts as lagging.
    var bufferSize = 4096
    var pingInterval: Duration = .seconds(10)

    /// The query of a live request: filters, `since_seq` and `batch`.
    struct Parameters {
        var filter: LiveFilter
        var sinceSeq: UInt64?
        /// `batch=1`: frames of spans, `{"event": "traces", "data": [Span, …]}`.
        var batched = false

        init(_ request: Request) throws(CoreError) {
            let query = request.uri.queryParameters
            func values(_ name: String) -> Set<String> { Set(query.getAll(name).filter { !$0.isEmpty }.map { String($0) }) }
            filter = LiveFilter(sources: values("source"), stages: values("stage"), operations: values("operation"), traceIds: values("trace_id"))
            if let since = request.query("since_seq") {
                guard let seq = UInt64(since) else { throw CoreError.invalidArgument("since_seq", "must be a seq (a non-negative integer)") }
                sinceSeq = seq
            }
            switch request.query("batch") {
            case nil, "0", "false": batched = false
            case "1", "true": batched = true
            case let other?: throw CoreError.invalidArgument("batch", "must be 1 or 0, not \(other)")
            }
        }
    }

    func register(on router: Router<CustodyRequestContext>) {
        router.ws("/api/traces/live") { request, _ in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else { throw APIError.upgradeRequired }
            _ = try Parameters(request)
            try Self.checkOrigin(request)
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            let parameters = try Parameters(context.request)
            try await stream(parameters, inbound: inbound, outbound: outbound, logger: context.logger)
        }
    }

    /// A browser's `Origin` must name the host it connected to (ports aside): another site's page
    /// may not read the stream with the user's access (docs/benchmarks.md R8). Clients that are not
    /// browsers may send none.
    static func checkOrigin(_ request: Request) throws {
        guard let origin = request.headers[.origin], origin != "null" else { return }
        guard let authority = request.head.authority, let originHost = URL(string: origin)?.host?.lowercased() else {
            throw APIError(status: .forbidden, code: .forbidden, message: "the Origin of this request is not allowed")
        }
        // The host of `host:port`, `[v6]:port` or `host`.
        var host = Substring(authority.lowercased())
        if host.hasPrefix("["), let end = host.firstIndex(of: "]") {
            host = host[host.index(after: host.startIndex)..<end]
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        let normalizedOrigin = originHost.hasPrefix("[") ? String(originHost.dropFirst().dropLast()) : originHost
        guard normalizedOrigin == host else {
            throw APIError(status: .forbidden, code: .forbidden, message: "the Origin of this request (\(origin)) is not this server")
        }
    }

    func stream(_ parameters: Parameters, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, logger: Logger) async throws {
        let session = await LiveSession(hub: runtime.hub, filter: parameters.filter, bufferSize: bufferSize, batched: parameters.batched)
        let send = { @Sendable (buffer: ByteBuffer) async throws in
            try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: buffer)))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Client messages: pause, resume, filter. The stream ends when the client leaves.
            group.addTask {
                defer { session.end() }
                for try await message in inbound.messages(maxSize: 64 << 10) {
                    guard case .text(let text) = message else { continue }
                    guard let command = try? JSONDecoder().decode(ClientCommand.self, from: Data(text.utf8)) else {
                        try await send(Self.notice(["event": .string("error"), "message": .string("not a command this stream understands")]))
                        continue
                    }
                    switch command.op {
                    case "pause": await session.pause()
                    case "resume": await session.resume()
                    case "filter": await session.update(filter: command.filter)
                    default:
                        try await send(Self.notice(["event": .string("error"), "message": .string("unknown op \(command.op)")]))
                    }
                }
            }
            // Spans: the catch-up from the log, then the live stream.
            group.addTask {
                try await session.run(since: parameters.sinceSeq, filter: parameters.filter) { item in
                    switch item {
                    case .span(let delivery): try await send(delivery.encoded)
                    case .frame(let frame): try await send(frame.encoded)
                    case .lagged(let dropped): try await send(Self.notice(["event": .string("lagged"), "dropped": .integer(Int64(dropped))]))
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: pingInterval)
                    try await send(Self.notice(["event": .string("ping"), "t": .integer(LogTime.now() / 1_000_000)]))
                }
            }
            // The first task to end (the client left, or the hub stopped) ends the others.
            try await group.next()
            session.end()
            group.cancelAll()
        }
    }

    static func notice(_ fields: [String: JSONValue]) -> ByteBuffer {
        JSONValue.object(fields).jsonText.bytes
    }

    /// The live stream's frame of a span: `{"event": "trace", "data": Span}`.
    static func encode(_ record: SpanRecord) -> ByteBuffer {
        var buffer = ByteBuffer(string: #"{"event":"trace","data":"#)
        record.write(into: &buffer)
        buffer.writeString("}")
        return buffer
    }

    /// The live stream's batched frame: `{"event": "traces", "data": [Span, …]}`.
    static func encode(_ records: [SpanRecord]) -> ByteBuffer {
        var buffer = ByteBuffer(string: #"{"event":"traces","data":"#)
        SpanRecord.writeArray(records, into: &buffer)
        buffer.writeString("}")
        return buffer
    }

    struct ClientCommand: Decodable {
        var op: String
        var filter: LiveFilter

        enum CodingKeys: String, CodingKey {
            case op, source, stage, operation
            case traceId = "trace_id"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            op = try container.decode(String.self, forKey: .op)
            func set(_ key: CodingKeys) throws -> Set<String> { Set(try container.decodeIfPresent([String].self, forKey: key) ?? []) }
            filter = LiveFilter(sources: try set(.source), stages: try set(.stage), operations: try set(.operation), traceIds: try set(.traceId))
        }
    }
}
