import HummingbirdCore
import NIOCore
import NIOHTTP1

/// The request-head limits of docs/api.md ("Envelope and errors"): a request line over 16 KiB is
/// answered 414 `uri_too_long`, headers over 64 KiB in all (or more fields than
/// ``RequestHeadLimits/maximumFieldCount``) 431 `headers_too_large` — at once, and the
/// connection is closed, so an oversized head can neither hang a connection nor reach a route
/// (nothing is appended for it).
///
/// ``RequestHeadScanner``, first on the raw bytes, measures each head as it arrives and answers
/// the moment a limit is passed. NIO's HTTP decoder bounds what it buffers of a head as well
/// (``decoderConfiguration``, a little above the limits) and reports `HTTPParserError.headerOverflow`
/// past it; ``RequestHeadObserver``, right after the decoder, turns that into the same answer and
/// checks the request line of each decoded head, for what the scanner could not measure.
enum RequestHeadLimits {
    static let maximumRequestLineBytes = 16 << 10
    static let maximumHeaderBytes = 64 << 10
    static let maximumFieldCount = 8192

    /// What the decoder may buffer: one field (the request line counts as one) up to the header
    /// limit, and the request line and the headers together.
    static var decoderConfiguration: HTTP1Channel.Configuration.DecoderConfiguration {
        .init(
            maxHeaderFieldSize: maximumHeaderBytes + 1024,
            maxHeaderListSize: maximumHeaderBytes + maximumRequestLineBytes + 1024,
            maxHeaderFieldCount: maximumFieldCount
        )
    }

    /// The answer, with the API's error envelope, closing the connection.
    static func response(requestLineTooLong: Bool) -> ByteBuffer {
        let (status, code, message) =
            requestLineTooLong
            ? ("414 URI Too Long", "uri_too_long", "the request line is over \(maximumRequestLineBytes) bytes")
            : ("431 Request Header Fields Too Large", "headers_too_large", "the request headers are over \(maximumHeaderBytes) bytes in all")
        let body = #"{"ok":false,"error":{"code":"\#(code)","message":"\#(message)"}}"#
        return ByteBuffer(
            string: "HTTP/1.1 \(status)\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)"
        )
    }

    /// Sent by ``RequestHeadObserver`` down to ``RequestHeadScanner``: answer and close.
    struct Refuse: Sendable {
        /// Nil: the scanner decides from whether the head's request line had ended.
        var requestLineTooLong: Bool?
    }

    /// Sent by ``RequestHeadObserver`` to ``RequestHeadScanner`` when a request's head or end
    /// has been decoded.
    enum Boundary: Sendable {
        /// A head was decoded: what follows is its body.
        case head
        /// A request ended: what follows is the next request's head.
        case end
    }
}

/// First on the raw bytes: measures the head being received — its request line, then its header
/// lines up to the blank line — and refuses it as soon as either is over its limit, answering
/// straight on the socket. Between a head and its request's end (the body) it looks at nothing.
/// Which bytes begin a head it learns from ``RequestHeadObserver`` (``RequestHeadLimits/Boundary``),
/// so for requests pipelined into one read it may measure less than was sent (never more); NIO's
/// decoder limits bound what it misses.
final class RequestHeadScanner: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Between a request's end and the next head's end: measuring.
    private var inHead = true
    private var inRequestLine = true
    private var requestLineBytes = 0
    private var headerBytes = 0
    /// The last byte that was not `\r` ended a line.
    private var atLineStart = false
    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        if inHead {
            measure(unwrapInboundIn(data))
            if requestLineBytes > RequestHeadLimits.maximumRequestLineBytes {
                refuse(context, requestLineTooLong: true)
                return
            }
            if headerBytes > RequestHeadLimits.maximumHeaderBytes {
                refuse(context, requestLineTooLong: false)
                return
            }
        }
        context.fireChannelRead(data)
    }

    private func measure(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            for byte in bytes {
                if inRequestLine {
                    if byte == UInt8(ascii: "\n") {
                        inRequestLine = false
                        atLineStart = true
                    } else {
                        requestLineBytes += 1
                    }
                    continue
                }
                headerBytes += 1
                if byte == UInt8(ascii: "\n") {
                    if atLineStart {
                        inHead = false  // the blank line: the head is whole
                        return
                    }
                    atLineStart = true
                } else if byte != UInt8(ascii: "\r") {
                    atLineStart = false
                }
            }
        }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        switch event {
        case let boundary as RequestHeadLimits.Boundary:
            if boundary == .end {
                inHead = true
                inRequestLine = true
                requestLineBytes = 0
                headerBytes = 0
                atLineStart = false
            } else {
                inHead = false
            }
            promise?.succeed()
        case let refusal as RequestHeadLimits.Refuse:
            promise?.succeed()
            refuse(context, requestLineTooLong: refusal.requestLineTooLong ?? inRequestLine)
        default:
            context.triggerUserOutboundEvent(event, promise: promise)
        }
    }

    private func refuse(_ context: ChannelHandlerContext, requestLineTooLong: Bool) {
        guard !refused else { return }
        refused = true
        let answer = RequestHeadLimits.response(requestLineTooLong: requestLineTooLong)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(answer))).whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

/// Right after NIO's request decoder: sees every decoded head and the decoder's errors.
final class RequestHeadObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            // "METHOD SP URI SP HTTP/1.1"
            if head.method.rawValue.utf8.count + head.uri.utf8.count + 10 > RequestHeadLimits.maximumRequestLineBytes {
                refuse(context, requestLineTooLong: true)
                return
            }
            context.triggerUserOutboundEvent(RequestHeadLimits.Boundary.head, promise: nil)
            if head.headers.contains(name: "upgrade") {
                // A WebSocket upgrade takes the HTTP handlers out and sends frames past this
                // point: leave with them. (Should the upgrade be declined, later heads on this
                // connection are bounded by the decoder alone.)
                context.fireChannelRead(data)
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                return
            }
        case .end:
            context.triggerUserOutboundEvent(RequestHeadLimits.Boundary.end, promise: nil)
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError, error == .headerOverflow {
            refuse(context, requestLineTooLong: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    private func refuse(_ context: ChannelHandlerContext, requestLineTooLong: Bool?) {
        guard !refused else { return }
        refused = true
        context.triggerUserOutboundEvent(RequestHeadLimits.Refuse(requestLineTooLong: requestLineTooLong), promise: nil)
    }
}
