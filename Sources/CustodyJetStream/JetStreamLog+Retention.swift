import CustodyLog
import Foundation
import NIOCore

/// Retention on the stream (docs/operations.md, "Retention"): purging the oldest messages, once
/// the core has recorded the deletion and every node holds its snapshot. What may be deleted and
/// when is the core's decision; the log keeps its own rules here.
extension JetStreamLog {
    /// Runs of at least ``Configuration/retentionRunBytes`` of messages, oldest first; never the
    /// last message, nor the messages after the last whole run.
    public func retentionExtent() async throws -> RetentionExtent {
        var total: Int64 = 0
        for entry in entries { total += Int64(entry.bytes) }
        var deletable: [DeletableRange] = []
        var runStart = 0
        var runBytes: Int64 = 0
        for position in entries.indices.dropLast() {
            runBytes += Int64(entries[position].bytes)
            guard runBytes >= configuration.retentionRunBytes else { continue }
            deletable.append(
                DeletableRange(
                    name: "messages \(entries[runStart].sequence)–\(entries[position].sequence) of stream \(configuration.stream)",
                    firstSeq: entries[runStart].firstSeq,
                    endSeq: entries[position].lastSeq + 1,
                    bytes: runBytes,
                    lastTimestamp: entries[position].lastTimestamp
                )
            )
            runStart = position + 1
            runBytes = 0
        }
        return RetentionExtent(bytes: total, deletable: deletable)
    }

    /// Purges the messages before the one whose first seq is `cut`, and returns what went.
    ///
    /// Guarantees:
    /// - `cut` must be the first seq of a message of the log; the last message is never purged.
    /// - Before the purge, the stream's start record (key `start` of the bucket
    ///   `<stream>_RETAINED`) holds the chain value before `cut` and the message it starts at —
    ///   and still the current start — so a node opening the stream after the purge, or after a
    ///   crash before it, knows where the log starts and what the chain is there.
    /// - Repeating it after a crash purges what is left; it is a no-op once done.
    /// - Messages purged without a start record (by hand) make every node refuse to open the
    ///   stream: the chain could not be verified from its first message.
    public func deleteRecords(before cut: UInt64) async throws -> LogDeletion {
        guard configuration.allowsRetention else {
            throw LogError(.invalidArgument, "retention is off for stream \(configuration.stream): its messages are never purged")
        }
        if let info = try await connection.streamInfo(configuration.stream), info.messages > 0 { forget(before: info.firstSequence) }
        guard cut > startSeq else { return LogDeletion(firstSeq: cut, lastSeq: cut - 1, segments: 0, bytes: 0) }
        guard let position = entries.firstIndex(where: { $0.firstSeq == cut }) else {
            throw LogError(.invalidArgument, "retention cuts the stream only at a message's first seq; \(cut) is not one")
        }
        // Everything the deletion says is taken now: the awaits below let this actor run other
        // work meanwhile (the follower seeing another node's purge moves startSeq and drops
        // entries), and a range taken after them could end before it starts.
        let (start, startChainNow, firstEntry) = (startSeq, startChain, entries[0])
        let chain = position == 0 ? startChainNow : entries[position - 1].chain
        let sequence = entries[position].sequence
        let bytes = entries[..<position].reduce(Int64(0)) { $0 + Int64($1.bytes) }
        let bucket = try await keyValueBucket(StreamStart.bucketSuffix)
        var record = try await StreamStart.read(from: bucket) ?? StreamStart(starts: [])
        record.starts.removeAll { $0.seq < start || $0.seq == cut }
        if start > 1 && !record.starts.contains(where: { $0.seq == start }) {
            record.starts.append(StreamStart.Start(seq: start, streamSequence: firstEntry.sequence, chainBefore: startChainNow.hex))
        }
        record.starts.append(StreamStart.Start(seq: cut, streamSequence: sequence, chainBefore: chain.hex))
        _ = try await bucket.set(StreamStart.key, Array(try JSONEncoder().encode(record)))
        try await connection.purgeStream(configuration.stream, before: sequence)
        let deletion = LogDeletion(firstSeq: start, lastSeq: cut - 1, segments: position, bytes: bytes)
        forget(before: sequence)
        return deletion
    }

    /// Starts the index at `start`: the log of a stream retention purged.
    func begin(at start: StreamStart.Start) {
        startSeq = start.seq
        startChain = ChainValue(hex: start.chainBefore) ?? .zero
        lastStreamSequence = start.streamSequence - 1
    }

    /// Drops the messages before stream sequence `sequence` from the index (retention purged
    /// them, here or on another node): the log starts at the first message kept.
    func forget(before sequence: UInt64) {
        guard let first = entries.first, first.sequence < sequence else { return }
        let kept = entries.firstIndex(where: { $0.sequence >= sequence }) ?? entries.count
        guard kept > 0, kept < entries.count else { return }
        startSeq = entries[kept].firstSeq
        startChain = entries[kept - 1].chain
        for entry in entries[..<kept] {
            if let group = cache.removeValue(forKey: entry.sequence) { cachedBytes -= group.bytes.readableBytes }
        }
        entries.removeFirst(kept)
    }
}

/// Where a stream retention purged starts (the value of key `start` in the bucket
/// `<stream>_RETAINED`): every start the log may have while a purge is under way, each with the
/// message it starts at and the chain value before it.
struct StreamStart: Codable, Sendable {
    struct Start: Codable, Sendable, Hashable {
        var seq: UInt64
        var streamSequence: UInt64
        /// The chain value after `seq − 1` (hex).
        var chainBefore: String

        enum CodingKeys: String, CodingKey {
            case seq
            case streamSequence = "stream_sequence"
            case chainBefore = "chain_before"
        }
    }

    var starts: [Start]

    static let bucketSuffix = "RETAINED"
    static let key = "start"

    static func read(from bucket: KeyValueBucket) async throws -> StreamStart? {
        guard let entry = try await bucket.get(key) else { return nil }
        do {
            return try JSONDecoder().decode(StreamStart.self, from: Data(entry.value))
        } catch {
            throw LogError(.corruption, "the stream's start record does not parse: \(error)")
        }
    }

    /// The start of a stream whose first message is `streamSequence`; refuses when no start
    /// record names it (its oldest messages were removed outside retention).
    static func find(
        streamSequence: UInt64,
        configuration: JetStreamLog.Configuration,
        connection: JetStreamConnection
    ) async throws -> Start {
        let bucket = try await JetStreamLog.retryingUntil(ContinuousClock.now + configuration.openTimeout) {
            try await connection.keyValueBucket(configuration.stream + "_" + bucketSuffix, replicas: configuration.replicas)
        }
        guard let start = try await read(from: bucket)?.starts.first(where: { $0.streamSequence == streamSequence }) else {
            throw LogError(
                .dataLoss,
                "stream \(configuration.stream) starts at message \(streamSequence), but no retention start record names it: its oldest messages were removed outside Custody's retention, and the hash chain cannot be followed from there"
            )
        }
        return start
    }
}
