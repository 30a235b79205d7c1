import CompressNIO
import NIOCore

/// A `Content-Encoding: gzip` request body, inflated under a limit that applies to what comes
/// out (docs/api.md: the size limits hold after decompression). Inflation stops as soon as the
/// output passes the limit — a small body that would inflate to gigabytes costs at most the limit
/// and one window of memory, never the whole of it.
enum GzipBody {
    enum Failure: Error, Equatable {
        /// More than the limit came out.
        case tooLarge
        /// The bytes are not a gzip stream.
        case corrupt
    }

    /// The inflating window: how far past the limit the output may get before inflation stops.
    static let windowBytes = 64 << 10

    static func inflate(_ body: ByteBuffer, limit: Int) throws(Failure) -> ByteBuffer {
        var input = body
        var output = ByteBuffer()
        let decompressor = CompressionAlgorithm.gzip().decompressor
        var window = ByteBufferAllocator().buffer(capacity: windowBytes)
        func take(_ window: inout ByteBuffer) throws(Failure) {
            guard output.readableBytes + window.readableBytes <= limit else { throw .tooLarge }
            output.writeBuffer(&window)
            window.clear()
        }
        do {
            try decompressor.startStream()
        } catch {
            throw .corrupt
        }
        defer { try? decompressor.finishStream() }
        // One inflate call per window: a full window (bufferOverflow) may leave output pending
        // even when all input is consumed, so the loop ends only on a call that left room.
        while true {
            do {
                try decompressor.streamInflate(from: &input, to: &window)
                try take(&window)
                return output
            } catch let error as CompressNIOError where error == .bufferOverflow {
                try take(&window)
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                // Nothing more can come out without more input: the stream ends here.
                try take(&window)
                return output
            } catch let failure as Failure {
                throw failure
            } catch {
                throw .corrupt
            }
        }
    }
}
