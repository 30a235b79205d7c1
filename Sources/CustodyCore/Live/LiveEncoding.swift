import NIOCore

/// How the live hub encodes what it sends: the adapter's wire format, applied once per span (for
/// clients that take one span a frame) and once per frame (for clients that take batches), then
/// shared by every client that receives it.
public struct LiveEncoding: Sendable {
    /// One span, as one frame.
    public var span: @Sendable (SpanRecord) -> ByteBuffer
    /// Several spans, in seq order, as one frame.
    public var batch: @Sendable ([SpanRecord]) -> ByteBuffer

    public init(span: @escaping @Sendable (SpanRecord) -> ByteBuffer, batch: @escaping @Sendable ([SpanRecord]) -> ByteBuffer) {
        self.span = span
        self.batch = batch
    }

    /// Encodes nothing: for runtimes without live clients (tools, benchmarks).
    public static let none = LiveEncoding(span: { _ in ByteBuffer() }, batch: { _ in ByteBuffer() })
}
