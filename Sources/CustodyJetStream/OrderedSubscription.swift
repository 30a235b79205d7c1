import CNATS
import NIOCore
import NIOPosix

/// A stream read in order from a sequence on, through a JetStream ordered consumer (nats.c's
/// `Ordered` subscription option): an ephemeral push consumer that nats.c recreates by itself,
/// from the last sequence it delivered, when it sees a gap or misses heartbeats (a leader
/// election, a reconnect). Messages come in stream order, each once.
///
/// Rules:
/// - ``next(maximum:timeout:)`` blocks on ``JetStreamConnection/threads`` for at most
///   `timeout`; one caller at a time (the JetStream log's follower).
/// - Flow control paces the servers to the reader: messages not taken yet wait in nats.c's
///   pending queue, bounded by its limits.
public final class OrderedSubscription: @unchecked Sendable {
    // @unchecked Sendable: `subscription` is set once in `init` and destroyed once in `deinit`;
    // nats.c's subscription calls are thread-safe, and the type's rule (one caller of `next` at
    // a time) is kept by its only user, the JetStream log's follower, which is an actor.
    private let subscription: OpaquePointer
    private let threads: NIOThreadPool
    /// The header whose value each message carries (``Message/header``).
    private let header: String?

    /// A message of the stream.
    public struct Message: Sendable {
        public var sequence: UInt64
        public var subject: String
        public var data: ByteBuffer
        /// The value of the header the subscription was asked to read (nil: none).
        public var header: String?
    }

    init(subscription: OpaquePointer, threads: NIOThreadPool, header: String?) {
        self.subscription = subscription
        self.threads = threads
        self.header = header
    }

    deinit {
        natsSubscription_Destroy(subscription)
    }

    /// Waits up to `timeout` for the next message, then takes whatever else is waiting, up to
    /// `maximum` messages in all; empty when none came in time.
    public func next(maximum: Int, timeout: Duration) async throws -> [Message] {
        try await threads.runIfActive { () throws(JetStreamError) -> [Message] in
            var messages: [Message] = []
            var wait = timeout.milliseconds
            while messages.count < maximum {
                var message: OpaquePointer?
                let status = natsSubscription_NextMsg(&message, self.subscription, max(wait, 1))
                if status == NATS_TIMEOUT { break }
                guard status == NATS_OK, let message else {
                    throw JetStreamError("reading the stream", status: status, errorCode: jsErrCode(rawValue: 0))
                }
                defer { natsMsg_Destroy(message) }
                var metadata: UnsafeMutablePointer<jsMsgMetaData>?
                let read = natsMsg_GetMetaData(&metadata, message)
                guard read == NATS_OK, let metadata else {
                    throw JetStreamError("reading a message's stream sequence", status: read, errorCode: jsErrCode(rawValue: 0))
                }
                let sequence = metadata.pointee.Sequence.Stream
                jsMsgMetaData_Destroy(metadata)
                let count = Int(natsMsg_GetDataLength(message))
                var data = ByteBufferAllocator().buffer(capacity: count)
                if count > 0, let bytes = natsMsg_GetData(message) {
                    data.writeBytes(UnsafeRawBufferPointer(start: bytes, count: count))
                }
                messages.append(
                    Message(
                        sequence: sequence,
                        subject: String(cString: natsMsg_GetSubject(message)),
                        data: data,
                        header: self.header.flatMap { headerValue(message, $0) }
                    )
                )
                // Only the first message is waited for; the rest are what has arrived already.
                var pending: Int32 = 0
                var bytes: Int32 = 0
                natsSubscription_GetPending(self.subscription, &pending, &bytes)
                if pending <= 0 { break }
                wait = 1
            }
            return messages
        }
    }

    /// Stops the subscription (its consumer goes away with it).
    public func close() async {
        _ = try? await threads.runIfActive { natsSubscription_Unsubscribe(self.subscription) }
    }
}

extension JetStreamConnection {
    /// Reads stream `stream` (messages on `subject`, a filter such as `custody.>`) in order from
    /// sequence `start` on, each message with the value of its header `header` when asked for.
    public func subscribeOrdered(stream: String, subject: String, from start: UInt64, header: String? = nil) async throws -> OrderedSubscription {
        try await threads.runIfActive { () throws(JetStreamError) -> OrderedSubscription in
            var options = jsSubOptions()
            jsSubOptions_Init(&options)
            var subscription: OpaquePointer?
            var errorCode = jsErrCode(rawValue: 0)
            let status = stream.withCString { name in
                options.Stream = name
                options.Ordered = true
                options.Config.DeliverPolicy = js_DeliverByStartSequence
                options.Config.OptStartSeq = max(start, 1)
                return js_SubscribeSync(&subscription, self.context, subject, nil, &options, &errorCode)
            }
            guard status == NATS_OK, let subscription else {
                throw JetStreamError("subscribing to \(stream)", status: status, errorCode: errorCode)
            }
            // nats.c's default pending limits (65,536 messages, 64 MiB) would drop messages of a
            // reader that fell behind; flow control keeps the queue short, and no limit drops.
            natsSubscription_SetPendingLimits(subscription, -1, -1)
            return OrderedSubscription(subscription: subscription, threads: self.threads, header: header)
        }
    }
}
