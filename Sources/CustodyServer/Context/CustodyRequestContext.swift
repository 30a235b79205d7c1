import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The request context of every route: Hummingbird's core storage, the WebSocket handler slot
/// (for `/api/traces/live`), and the request's trace, which ``TraceMiddleware`` fills in before any
/// route runs.
public struct CustodyRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    /// The trace id of the request (docs/api.md "Tracing of requests").
    public var traceId = ""
    /// When the request arrived: wall clock (nanoseconds since the Unix epoch) and monotonic.
    public var receivedAt: Int64 = 0
    public var started = ContinuousClock.now

    /// The connection the request came on.
    let channel: any Channel

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.channel = source.channel
    }

    /// Bodies larger than this are refused with 413 before they are read in full.
    public var maxUploadSize: Int { ServerLimits.default.maximumBodyBytes }
}

extension CustodyRequestContext {
    /// A path parameter, percent-decoded (`/api/tasks/a%20b` is task `a b`); a parameter that
    /// does not decode is taken as it is.
    func pathValue(_ name: String) throws -> String {
        let raw = try parameters.require(name)
        return raw.removingPercentEncoding ?? raw
    }
}

extension CustodyRequestContext {
    /// Lets this request's answer take longer than the request deadline: for a route that has read
    /// its whole request and then legitimately works for long (a replay at the original pace). The
    /// deadline guards against clients that trickle requests; it comes back with the next byte the
    /// client sends.
    func allowSlowAnswer() {
        channel.triggerUserOutboundEvent(RequestDeadlineHandler.AllowSlowAnswer(), promise: nil)
    }
}
