import CNATS
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A connection to a NATS cluster with JetStream, through nats.c (Debian `libnats-dev`): the
/// stream operations the JetStream event log is built on (docs/architecture.md, "The two
/// seams"; CLUSTER.md's rules are in docs/operations.md).
///
/// Rules:
/// - nats.c's calls block (a publish waits for JetStream's acknowledgement), so every call runs
///   on ``threads``, never on Swift concurrency's cooperative pool.
/// - A publish carries a message id (`Nats-Msg-Id`): retried with the same id after an unknown
///   outcome (a timeout during a leader election), it is stored once, and the answer says
///   `duplicate` with the original sequence.
/// - `expectedLastSequence` fences concurrent writers: JetStream refuses the message (error
///   10071) unless the stream's last sequence is the one given.
public final class JetStreamConnection: @unchecked Sendable {
    // @unchecked Sendable: the two pointers are set once in `init` and destroyed once in
    // `deinit`; nats.c documents `natsConnection` and `jsCtx` as safe to use from any number of
    // threads at once, and nothing else here is mutable.
    private let connection: OpaquePointer
    let context: OpaquePointer
    /// The threads nats.c's blocking calls run on.
    public let threads: NIOThreadPool

    /// What JetStream answered to a publish.
    public struct Acknowledgement: Sendable, Hashable {
        /// The message's sequence in the stream.
        public var sequence: UInt64
        /// The message id was seen before: this is the sequence of the message stored then.
        public var duplicate: Bool
    }

    /// A stream's configuration and state, as JetStream reports them.
    public struct StreamInfo: Sendable, Hashable {
        public var name: String
        public var subjects: [String]
        public var replicas: Int
        public var fileStorage: Bool
        public var denyDelete: Bool
        public var denyPurge: Bool
        /// The duplicate window, in nanoseconds.
        public var duplicateWindow: Int64
        public var messages: UInt64
        public var bytes: UInt64
        public var firstSequence: UInt64
        public var lastSequence: UInt64
        /// The cluster's leader for the stream (nil on a single server).
        public var leader: String?
    }

    /// Connects to `urls` (comma-separated `nats://host:port`).
    public static func connect(to urls: String, threads: NIOThreadPool = .singleton) async throws -> JetStreamConnection {
        try await threads.runIfActive { try JetStreamConnection(urls: urls, threads: threads) }
    }

    /// How long the client waits between attempts to reconnect after losing its server (nats.c's
    /// default, 2 s, holds every write of a node whose server died for that long).
    static let reconnectWait: Int64 = 100

    private init(urls: String, threads: NIOThreadPool) throws(JetStreamError) {
        var options: OpaquePointer?
        var status = natsOptions_Create(&options)
        guard status == NATS_OK, let options else {
            throw JetStreamError("configuring the connection to \(urls)", status: status, errorCode: jsErrCode(rawValue: 0))
        }
        defer { natsOptions_Destroy(options) }
        // Reconnect for as long as it takes (nats.c gives up after 60 attempts by default, which
        // would leave the node without its log for good), to any server of the list.
        let servers = urls.split(separator: ",").map { String($0.filter { $0 != " " }) }
        let listed = withCStrings(servers) { natsOptions_SetServers(options, $0.baseAddress, Int32(servers.count)) }
        for set in [
            listed, natsOptions_SetMaxReconnect(options, -1),
            natsOptions_SetReconnectWait(options, Self.reconnectWait), natsOptions_SetTimeout(options, 2000),
        ] where set != NATS_OK {
            throw JetStreamError("configuring the connection to \(urls)", status: set, errorCode: jsErrCode(rawValue: 0))
        }
        var connection: OpaquePointer?
        status = natsConnection_Connect(&connection, options)
        guard status == NATS_OK, let connection else {
            throw JetStreamError("connecting to \(urls)", status: status, errorCode: jsErrCode(rawValue: 0))
        }
        var context: OpaquePointer?
        status = natsConnection_JetStream(&context, connection, nil)
        guard status == NATS_OK, let context else {
            natsConnection_Destroy(connection)
            throw JetStreamError("opening JetStream on \(urls)", status: status, errorCode: jsErrCode(rawValue: 0))
        }
        self.connection = connection
        self.context = context
        self.threads = threads
    }

    deinit {
        jsCtx_Destroy(context)
        natsConnection_Destroy(connection)
    }

    /// Closes the connection; later calls fail.
    public func close() async {
        _ = try? await threads.runIfActive { natsConnection_Close(self.connection) }
    }

    // MARK: Streams

    /// The stream `name`, nil when there is none; waits `timeout` for JetStream's answer.
    public func streamInfo(_ name: String, timeout: Duration = .seconds(5)) async throws -> StreamInfo? {
        try await threads.runIfActive { () throws(JetStreamError) -> StreamInfo? in
            var info: UnsafeMutablePointer<jsStreamInfo>?
            var errorCode = jsErrCode(rawValue: 0)
            var options = jsOptions()
            jsOptions_Init(&options)
            options.Wait = max(timeout.milliseconds, 1)
            let status = js_GetStreamInfo(&info, self.context, name, &options, &errorCode)
            if status == NATS_NOT_FOUND || errorCode == JSStreamNotFoundErr { return nil }
            guard status == NATS_OK, let info else { throw JetStreamError("reading stream \(name)", status: status, errorCode: errorCode) }
            defer { jsStreamInfo_Destroy(info) }
            return StreamInfo(info.pointee)
        }
    }

    /// Creates the stream `name` over `subjects`: file storage, `replicas` copies, deleting
    /// messages denied (the log is append-only) and purging too unless `allowsPurge` (retention
    /// purges the oldest messages; JetStream never lets a stream that denies purging allow it
    /// later), a duplicate window of `duplicateWindow` nanoseconds. Fails when it exists.
    public func addStream(
        name: String,
        subjects: [String],
        replicas: Int,
        duplicateWindow: Int64,
        allowsPurge: Bool = false
    ) async throws
        -> StreamInfo
    {
        try await threads.runIfActive { () throws(JetStreamError) -> StreamInfo in
            var config = jsStreamConfig()
            jsStreamConfig_Init(&config)
            var info: UnsafeMutablePointer<jsStreamInfo>?
            var errorCode = jsErrCode(rawValue: 0)
            let status = name.withCString { namePointer in
                withCStrings(subjects) { subjectPointers in
                    config.Name = namePointer
                    config.Subjects = subjectPointers.baseAddress
                    config.SubjectsLen = Int32(subjects.count)
                    config.Storage = js_FileStorage
                    config.Replicas = Int64(replicas)
                    config.DenyDelete = true
                    config.DenyPurge = !allowsPurge
                    config.Duplicates = duplicateWindow
                    return js_AddStream(&info, self.context, &config, nil, &errorCode)
                }
            }
            guard status == NATS_OK, let info else { throw JetStreamError("creating stream \(name)", status: status, errorCode: errorCode) }
            defer { jsStreamInfo_Destroy(info) }
            return StreamInfo(info.pointee)
        }
    }

    /// Removes every message of stream `name` before stream sequence `sequence` (JetStream's
    /// purge; refused by a stream that denies purging).
    public func purgeStream(_ name: String, before sequence: UInt64) async throws {
        // The closure returns a value: Swift 6.3's compiler crashes on a typed-throws closure
        // returning Void here.
        _ = try await threads.runIfActive { () throws(JetStreamError) -> Bool in
            var errorCode = jsErrCode(rawValue: 0)
            var options = jsOptions()
            jsOptions_Init(&options)
            options.Stream.Purge.Sequence = sequence
            let status = js_PurgeStream(self.context, name, &options, &errorCode)
            guard status == NATS_OK else {
                throw JetStreamError("purging stream \(name) before message \(sequence)", status: status, errorCode: errorCode)
            }
            return true
        }
    }

    // MARK: Messages

    /// Publishes `data` on `subject` with message id `messageID` (`Nats-Msg-Id`); with
    /// `expectedLastSequence`, only if the stream's last sequence is that
    /// (`Nats-Expected-Last-Sequence`); with `expectedLastSubjectSequence`, only if the last
    /// message on `subject` has that sequence, 0 meaning there is none
    /// (`Nats-Expected-Last-Subject-Sequence`). A failed expectation is JetStream error 10071.
    /// `maxWait` bounds the wait for the acknowledgement (a ``JetStreamError/Code/timedOut``
    /// leaves the outcome unknown: retry with the same id).
    public func publish(
        subject: String,
        data: some Collection<UInt8> & Sendable,
        messageID: String,
        expectedLastSequence: UInt64? = nil,
        expectedLastSubjectSequence: UInt64? = nil,
        headers extra: [(String, String)] = [],
        maxWait: Duration = .seconds(10)
    ) async throws -> Acknowledgement {
        try await threads.runIfActive { () throws(JetStreamError) -> Acknowledgement in
            var message: OpaquePointer?
            var status = data.withContiguousStorageIfAvailable { bytes in
                let raw = UnsafeRawBufferPointer(bytes)
                return natsMsg_Create(&message, subject, nil, raw.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(raw.count))
            }
            if status == nil {
                let copy = Array(data)
                status = copy.withUnsafeBytes { raw in
                    natsMsg_Create(&message, subject, nil, raw.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(raw.count))
                }
            }
            guard status == NATS_OK, let message else {
                throw JetStreamError("making a message for \(subject)", status: status ?? NATS_ERR, errorCode: jsErrCode(rawValue: 0))
            }
            defer { natsMsg_Destroy(message) }
            var headers: [(String, String)] = [("Nats-Msg-Id", messageID)]
            if let expectedLastSequence { headers.append(("Nats-Expected-Last-Sequence", String(expectedLastSequence))) }
            if let expectedLastSubjectSequence {
                headers.append(("Nats-Expected-Last-Subject-Sequence", String(expectedLastSubjectSequence)))
            }
            headers += extra
            for (key, value) in headers {
                let set = natsMsgHeader_Set(message, key, value)
                guard set == NATS_OK else { throw JetStreamError("setting header \(key)", status: set, errorCode: jsErrCode(rawValue: 0)) }
            }
            var options = jsPubOptions()
            jsPubOptions_Init(&options)
            options.MaxWait = maxWait.milliseconds
            var acknowledgement: UnsafeMutablePointer<jsPubAck>?
            var errorCode = jsErrCode(rawValue: 0)
            let published = js_PublishMsg(&acknowledgement, self.context, message, &options, &errorCode)
            guard published == NATS_OK, let acknowledgement else {
                throw JetStreamError("publishing to \(subject)", status: published, errorCode: errorCode)
            }
            defer { jsPubAck_Destroy(acknowledgement) }
            return Acknowledgement(sequence: acknowledgement.pointee.Sequence, duplicate: acknowledgement.pointee.Duplicate)
        }
    }

    /// Publishes every payload on `subject` without waiting for each acknowledgement in turn
    /// (nats.c's asynchronous publishing: each message is acknowledged by JetStream, the
    /// acknowledgements are collected as they come), then waits up to `maxWait` until all of them
    /// are acknowledged. Returns how many were not. For `custody bench compare`: what a user of
    /// plain JetStream would do to append as fast as it takes them.
    public func publishPipelined(subject: String, payloads: [[UInt8]], maxWait: Duration = .seconds(60)) async throws -> Int {
        try await threads.runIfActive { () throws(JetStreamError) -> Int in
            for payload in payloads {
                let status = payload.withUnsafeBytes { raw in
                    js_PublishAsync(self.context, subject, raw.baseAddress, Int32(raw.count), nil)
                }
                guard status == NATS_OK else {
                    throw JetStreamError("publishing to \(subject)", status: status, errorCode: jsErrCode(rawValue: 0))
                }
            }
            var options = jsPubOptions()
            jsPubOptions_Init(&options)
            options.MaxWait = maxWait.milliseconds
            let completed = js_PublishAsyncComplete(self.context, &options)
            guard completed != NATS_OK else { return 0 }
            var pending = natsMsgList()
            guard js_PublishAsyncGetPendingList(&pending, self.context) == NATS_OK else { return payloads.count }
            defer { natsMsgList_Destroy(&pending) }
            return Int(pending.Count)
        }
    }

    /// The largest message the servers take, in bytes (their `max_payload`).
    public var maximumPayload: Int { Int(natsConnection_GetMaxPayload(connection)) }

    /// Whether the client is connected to a server now (it reconnects by itself after a
    /// server is lost).
    public var isConnected: Bool { natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED }

    /// The URL of the server the client is connected to, nil when none.
    public var connectedURL: String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard natsConnection_GetConnectedUrl(connection, &buffer, buffer.count) == NATS_OK else { return nil }
        let url = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return url.isEmpty ? nil : url
    }

    /// Message `sequence` of stream `stream` — its data and the value of its header `header`
    /// when asked for — nil when the stream has no such message.
    public func message(stream: String, sequence: UInt64, header: String? = nil) async throws -> (data: [UInt8], header: String?)? {
        try await threads.runIfActive { () throws(JetStreamError) -> (data: [UInt8], header: String?)? in
            var message: OpaquePointer?
            var errorCode = jsErrCode(rawValue: 0)
            let status = js_GetMsg(&message, self.context, stream, sequence, nil, &errorCode)
            if status == NATS_NOT_FOUND || errorCode == JSNoMessageFoundErr { return nil }
            guard status == NATS_OK, let message else {
                throw JetStreamError("reading message \(sequence) of \(stream)", status: status, errorCode: errorCode)
            }
            defer { natsMsg_Destroy(message) }
            let value = header.flatMap { headerValue(message, $0) }
            let count = Int(natsMsg_GetDataLength(message))
            guard count > 0, let data = natsMsg_GetData(message) else { return ([], value) }
            return (data.withMemoryRebound(to: UInt8.self, capacity: count) { Array(UnsafeBufferPointer(start: $0, count: count)) }, value)
        }
    }
}

/// The value of header `name` of `message`, nil when it has none.
func headerValue(_ message: OpaquePointer, _ name: String) -> String? {
    var value: UnsafePointer<CChar>?
    guard natsMsgHeader_Get(message, name, &value) == NATS_OK, let value else { return nil }
    return String(cString: value)
}

extension JetStreamConnection {
    /// The sequence of the last message on `subject` in stream `stream`; 0 when there is none.
    public func lastSequence(stream: String, subject: String) async throws -> UInt64 {
        try await threads.runIfActive { () throws(JetStreamError) -> UInt64 in
            var message: OpaquePointer?
            var errorCode = jsErrCode(rawValue: 0)
            let status = js_GetLastMsg(&message, self.context, stream, subject, nil, &errorCode)
            if status == NATS_NOT_FOUND || errorCode == JSNoMessageFoundErr { return 0 }
            guard status == NATS_OK, let message else {
                throw JetStreamError("reading the last message on \(subject)", status: status, errorCode: errorCode)
            }
            defer { natsMsg_Destroy(message) }
            return natsMsg_GetSequence(message)
        }
    }
}

extension JetStreamConnection.StreamInfo {
    init(_ info: jsStreamInfo) {
        let config = info.Config.pointee
        name = String(cString: config.Name)
        subjects = (0..<Int(config.SubjectsLen)).compactMap { config.Subjects[$0].map { String(cString: $0) } }
        replicas = Int(config.Replicas)
        fileStorage = config.Storage == js_FileStorage
        denyDelete = config.DenyDelete
        denyPurge = config.DenyPurge
        duplicateWindow = config.Duplicates
        messages = info.State.Msgs
        bytes = info.State.Bytes
        firstSequence = info.State.FirstSeq
        lastSequence = info.State.LastSeq
        leader = info.Cluster.flatMap { $0.pointee.Leader.map { String(cString: $0) } }
    }
}

extension Duration {
    /// The duration in whole milliseconds, as nats.c takes timeouts.
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// Calls `body` with C strings of `strings`, valid during the call.
private func withCStrings<Result>(_ strings: [String], _ body: (UnsafeMutableBufferPointer<UnsafePointer<CChar>?>) -> Result) -> Result {
    var pointers = strings.map { UnsafePointer(strdup($0)) }
    defer { for pointer in pointers { free(UnsafeMutablePointer(mutating: pointer)) } }
    return pointers.withUnsafeMutableBufferPointer { body($0) }
}
