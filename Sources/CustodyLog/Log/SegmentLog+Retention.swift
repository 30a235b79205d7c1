import Logging

/// Retention: deleting the oldest sealed segments (docs/operations.md, "Retention"). What may be
/// deleted and when — after every projection applied it and a snapshot holds the state it
/// built — is the caller's (the core's) decision; the log keeps its own rules here.
extension SegmentLog {
    /// Deletes every sealed segment that ends before `cut`, oldest first, and returns what went.
    ///
    /// Guarantees:
    /// - `cut` must be the base of a sealed segment or of the active one; the active segment is
    ///   never deleted, nor the last segment holding records (the chain goes on from it).
    /// - Before the first file is removed, ``RetainedStart`` (`retention.json`) is durable with
    ///   the chain value before every seq the log may then start at, so a crash between two
    ///   deletions leaves a log that opens and verifies.
    /// - Readers stop seeing a segment before its file is removed: a read from an older seq
    ///   starts at the new first seq.
    /// - Repeating it after a crash deletes what is left to delete; it is a no-op once done.
    public func deleteRecords(before cut: UInt64) async throws -> LogDeletion {
        let bases = sealedSegments.map(\.baseSeq) + [activeSegment.baseSeq]
        guard bases.contains(cut) else {
            throw LogError(.invalidArgument, "retention cuts the log only at a segment's first seq; \(cut) is not one")
        }
        let lastHolding =
            activeSegment.index.endSeq > activeSegment.baseSeq
            ? activeSegment.baseSeq
            : sealedSegments.last(where: { $0.index.endSeq > $0.baseSeq })?.baseSeq ?? activeSegment.baseSeq
        guard cut <= lastHolding else {
            throw LogError(.invalidArgument, "retention keeps the last segment holding records (seq \(lastHolding) on)")
        }
        let doomed = sealedSegments.filter { $0.baseSeq < cut }
        guard let first = doomed.first else {
            return LogDeletion(firstSeq: cut, lastSeq: cut - 1, segments: 0, bytes: 0)
        }
        // The chain value before every seq the log may start at while this runs.
        var starts: [UInt64: ChainValue] = [:]
        if let known = retainedStart?.chainValue(before: first.baseSeq) {
            starts[first.baseSeq] = known
        } else if first.baseSeq == 1 {
            starts[1] = .zero
        }
        for base in doomed.dropFirst().map(\.baseSeq) + [cut] {
            if let value = try await chainValue(after: base - 1) { starts[base] = value }
        }
        let record = RetainedStart(firstSeq: cut, chainBefore: starts)
        let directory = directory
        let fileSystem = fileSystem
        try await runWriterIO { try record.write(in: directory, fileSystem: fileSystem) }.get()
        retainedStart = record
        var deletion = LogDeletion(firstSeq: first.baseSeq, lastSeq: cut - 1, segments: 0, bytes: 0)
        while let oldest = sealedSegments.first, oldest.baseSeq < cut {
            _ = forgetOldestSealedSegment()
            let base = oldest.baseSeq
            try await runWriterIO {
                let names = try fileSystem.contentsOfDirectory(at: directory).filter { name in
                    name == SegmentName.segment(base) || name == SegmentName.offsetIndex(base) || name == SegmentName.timeIndex(base)
                        || name.hasPrefix(SegmentName.padded(base) + ".quarantine-") || name == SegmentName.dictionary(base)
                }
                // The dictionary last: the segment is never left without it.
                for name in names.sorted(by: { $1 == SegmentName.dictionary(base) && $0 != $1 }) {
                    try fileSystem.removeFile(at: joinPath(directory, name))
                }
                try fileSystem.synchronizeDirectory(at: directory)
            }.get()
            dictionaries.forget(segmentAt: joinPath(directory, SegmentName.segment(base)))
            deletion.segments += 1
            deletion.bytes += oldest.length
            logger.notice(
                "retention deleted a segment",
                metadata: ["segment": "\(SegmentName.segment(base))", "seqs": "\(base)...\(oldest.index.endSeq &- 1)", "bytes": "\(oldest.length)"]
            )
        }
        return deletion
    }
}
