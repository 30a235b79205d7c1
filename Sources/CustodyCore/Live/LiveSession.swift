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
        /// `n` spans were dropped for this client because it fell behind.
        case lagged(Int)
    }

    let hub: LiveHub
    let subscription: LiveHub.Subscription

    /// Subscribes a client with `filter` and a buffer of `bufferSize` spans.
    public init(hub: LiveHub, filter: LiveFilter, bufferSize: Int) async {
        self.hub = hub
        self.subscription = await hub.subscribe(filter: filter, bufferSize: bufferSize)
    }

    /// Spans after this seq come live; `since_seq` below it is caught up from the log first.
    public var startsAfter: UInt64 { subscription.startsAfter }

    /// Catches up from `since` (when below ``startsAfter``), then delivers live until the stream
    /// ends; unsubscribes before returning.
    public func run(since: UInt64?, filter: LiveFilter, deliver: @Sendable (Item) async throws -> Void) async throws {
        do {
            if let since, since < subscription.startsAfter {
                try await hub.catchUp(from: since, through: subscription.startsAfter, filter: filter) { try await deliver(.span($0)) }
            }
            for await message in subscription.messages {
                try Task.checkCancellation()
                switch message {
                case .span(let delivery):
                    try await deliver(.span(delivery))
                case .lagged(let dropped):
                    try await deliver(.lagged(dropped))
                case .resumed(let after, let through, let filter):
                    try await hub.catchUp(from: after, through: through, filter: filter) { try await deliver(.span($0)) }
                }
            }
        } catch {
            await hub.unsubscribe(subscription.id)
            throw error
        }
        await hub.unsubscribe(subscription.id)
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
