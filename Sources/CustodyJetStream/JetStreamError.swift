import CNATS

/// A failure of the NATS client or of JetStream (swift-nio style: a struct wrapping a private
/// code enum), with nats.c's status text and JetStream's error code kept.
public struct JetStreamError: Error, Sendable, Hashable, CustomStringConvertible {
    fileprivate enum Base: Sendable, Hashable {
        case connectionFailed
        case streamMismatch
        case publishFailed
        case notFound
        case timedOut
        case unavailable
        case fenced
        case failed
    }

    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate let base: Base
        /// The servers could not be reached.
        public static let connectionFailed = Code(base: .connectionFailed)
        /// An existing stream's configuration does not fit what was asked for.
        public static let streamMismatch = Code(base: .streamMismatch)
        /// JetStream refused the message (an expected-last-sequence fence, among others).
        public static let publishFailed = Code(base: .publishFailed)
        /// No such stream or message.
        public static let notFound = Code(base: .notFound)
        /// No answer in time: the outcome of a publish is unknown.
        public static let timedOut = Code(base: .timedOut)
        /// No server or no JetStream leader answered (disconnected, no responders, a leader
        /// election): try again; a publish's outcome is unknown.
        public static let unavailable = Code(base: .unavailable)
        /// An expected-last-sequence or expected-last-subject-sequence did not hold (JetStream
        /// error 10071): nothing was stored.
        public static let fenced = Code(base: .fenced)
        public static let failed = Code(base: .failed)

        public var description: String { "\(base)" }
    }

    public let code: Code
    public let message: String
    /// JetStream's error code (10071: wrong last sequence), 0 when there is none.
    public let jetStreamCode: Int

    init(_ code: Code, _ message: String, jetStreamCode: Int = 0) {
        self.code = code
        self.message = message
        self.jetStreamCode = jetStreamCode
    }

    /// The error for a nats.c status `status` (and JetStream code `errorCode`) of `operation`.
    init(_ operation: String, status: natsStatus, errorCode: jsErrCode) {
        let text = String(cString: natsStatus_GetText(status))
        let code: Code =
            switch (status, errorCode) {
            case (_, JSStreamWrongLastSequenceErr): .fenced
            case (_, JSClusterNotAvailErr), (_, JSClusterNotLeaderErr), (_, JSClusterNoPeersErr): .unavailable
            case (NATS_TIMEOUT, _): .timedOut
            case (NATS_NOT_FOUND, _): .notFound
            case (NATS_NO_SERVER, _): .connectionFailed
            case (NATS_NO_RESPONDERS, _), (NATS_CONNECTION_DISCONNECTED, _), (NATS_NOT_YET_CONNECTED, _), (NATS_STALE_CONNECTION, _):
                .unavailable
            default: errorCode.rawValue != 0 ? .publishFailed : .failed
            }
        var detail = errorCode.rawValue != 0 ? " (JetStream error \(errorCode.rawValue))" : ""
        // nats.c keeps the last error's text per thread: JetStream's own description
        // ("wrong last sequence: 41") when it gave one. Called on the thread that failed.
        var lastStatus = NATS_OK
        if let last = nats_GetLastError(&lastStatus), lastStatus == status {
            let lastText = String(cString: last)
            if !lastText.isEmpty && lastText != text { detail += ": \(lastText)" }
        }
        self.init(code, "\(operation) failed: \(text)\(detail)", jetStreamCode: Int(errorCode.rawValue))
    }

    public var description: String { message }

    /// Whether trying again may succeed: the servers or the stream's leader did not answer, or not
    /// in time (a publish retried with the same message id is then stored at most once).
    public var isTransient: Bool { code == .timedOut || code == .unavailable || code == .connectionFailed }
}
