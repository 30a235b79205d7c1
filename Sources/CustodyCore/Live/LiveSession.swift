/// One live-stream client from start to end (docs/api.md "Live stream"): subscribe, catch up
/// from `since_seq` out of the log, then live spans with no gap and no duplicate; `lagged` when
/// the client fell behind; pause and resume (what arrived meanwhile is read from the log);
/// filter changes. The WebSocket route and gRPC `TraceStream.Live` are both this, each with its
/// own framing.
///
/// ``run(since:deliver:)`` ends when the client's stream is finished (``end()``, from a
/// cancellation or shutdown handler), when the hub stops, or when `deliver` throws; it
/// unsubscribes before it returns either way.
public struct LiveSession: Sendable {
    /// What the client is sent.
    public enum Item: Sendable {
        case span(LiveHub.Delivery)
        /// A batched client's spans (`batched` at ``init(hub:filter:bufferSize:batched:)``).
        case frame(LiveHub.Frame)
        /// `n` spans were dropped for this client because it fell behind.
        case lagged(Int)
    }

    let hub: LiveHub
    let subscription: LiveHub.Subscription
    /// Whether the client takes frames of spans (``Item/frame(_:)``), the catch-up included.
    public let batched: Bool

    /// Subscribes a client with `filter` and a buffer of `bufferSize` spans; `batched` clients
    /// get frames of spans (docs/api.md "Live stream", `?batch=1`).
    public init(hub: LiveHub, filter: LiveFilter, bufferSize: Int, batched: Bool = false) async {
        self.hub = hub
        self.batched = batched
        self.subscription = await hub.subscribe(filter: filter, bufferSize: bufferSize, batched: batched)
    }

    /// Spans after this seq come live; `since_seq` below it is caught up from the log first.
    public var startsAfter: UInt64 { subscription.startsAfter }

    /// Catches up from `since` (when below ``startsAfter``), then delivers live until the stream
    /// ends; unsubscribes before returning.
    public func run(since: UInt64?, filter: LiveFilter, deliver: @Sendable (Item) async throws -> Void) async throws {
        do {
            if let since, since < subscription.startsAfter {
                try await catchUp(from: since, through: subscription.startsAfter, filter: filter, deliver: deliver)
            }
            for await message in subscription.messages {
                try Task.checkCancellation()
                switch message {
                case .span(let delivery):
                    try await deliver(.span(delivery))
                case .frame(let frame):
                    try await deliver(.frame(frame))
                case .lagged(let dropped):
                    try await deliver(.lagged(dropped))
                case .resumed(let after, let through, let filter):
                    try await catchUp(from: after, through: through, filter: filter, deliver: deliver)
                }
            }
        } catch {
            await hub.unsubscribe(subscription.id)
            throw error
        }
        await hub.unsubscribe(subscription.id)
    }

    private func catchUp(from after: UInt64, through: UInt64, filter: LiveFilter, deliver: @Sendable (Item) async throws -> Void) async throws {
        if batched {
            try await hub.catchUpFrames(from: after, through: through, filter: filter) { try await deliver(.frame($0)) }
        } else {
            try await hub.catchUp(from: after, through: through, filter: filter) { try await deliver(.span($0)) }
        }
    }

    /// Ends the stream from any context; ``run(since:filter:deliver:)`` then returns.
    public func end() { subscription.finish() }

    /// Stops live delivery until ``resume()``; nothing is lost meanwhile.
    public func pause() async { await hub.pause(subscription.id) }

    /// Resumes live delivery after reading from the log what arrived during the pause.
    public func resume() async { await hub.resume(subscription.id) }

    /// Changes what the client receives from now on.
    public func update(filter: LiveFilter) async { await hub.update(subscription.id, filter: filter) }
}
