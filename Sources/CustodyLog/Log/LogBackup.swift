import NIOPosix

/// A consistent copy of a segment log taken while it is written (docs/operations.md, "Backup and
/// restore").
///
/// Guarantees:
/// - **Consistent.** ``LogBackupPoint`` is read in one step of the log's actor: the acknowledged
///   head, its chain value, and the byte length of every segment up to that head. Sealed
///   segments never change and the active one only grows, so copying each file's first `bytes`
///   bytes gives exactly the log up to the head, however long the copy takes.
/// - **Incremental.** A sealed segment (and its index files) already in the destination with the
///   size the point gives is not copied again.
/// - **Never half-installed.** Each file is written under a temporary name, synchronized and
///   renamed; whoever installs a backup (the core's manifest) writes its own record last.
public struct LogBackupPoint: Sendable, Hashable, Codable {
    /// One file of the log to copy.
    public struct File: Sendable, Hashable, Codable {
        /// The name in the data directory.
        public var name: String
        /// The bytes to copy from its start: the whole file, or the active segment up to the head.
        public var bytes: Int64
        /// Whether the file no longer changes (a sealed segment, an index, a quarantine file).
        public var sealed: Bool
    }

    /// The data directory the files are in.
    public var directory: String
    /// The last acknowledged seq and the chain's value after it.
    public var head: ChainHead
    public var files: [File]
}

/// What ``LogBackupPoint/copy(from:to:fileSystem:progress:)`` did.
public struct LogBackupCopyReport: Sendable, Hashable, Codable {
    public var filesCopied = 0
    public var filesKept = 0
    public var bytesCopied: Int64 = 0
}

extension SegmentLog {
    /// The log as it stands now, for a backup: the acknowledged head and the files that hold it
    /// (their lengths up to the head).
    public func backupPoint() async throws -> LogBackupPoint {
        let directory = directory
        let fileSystem = fileSystem
        // Read together, before anything is awaited: appends may go on meanwhile.
        let head = chainHead
        let activeSegment = activeSegmentForBackup
        var files: [LogBackupPoint.File] = []
        for segment in sealedSegmentsForBackup {
            files.append(.init(name: SegmentName.segment(segment.baseSeq), bytes: segment.length, sealed: true))
        }
        files.append(.init(name: SegmentName.segment(activeSegment.base), bytes: activeSegment.length, sealed: false))
        // Index and quarantine files: whole, as they are now (sealed segments' indexes never
        // change; the active segment's are written when it is sealed).
        let extra = try await threadPool.runIfActive { () throws -> [LogBackupPoint.File] in
            var extra: [LogBackupPoint.File] = []
            for name in try fileSystem.contentsOfDirectory(at: directory).sorted()
            where name.hasSuffix(".index") || name.hasSuffix(".timeindex") || name.contains(".quarantine-")
                || name.hasSuffix(SegmentName.dictionarySuffix) || name == SegmentName.quarantineManifest
                || name == SegmentName.retainedStart
            {
                let file = try fileSystem.openFile(at: joinPath(directory, name), mode: .readOnly)
                defer { try? file.close() }
                extra.append(
                    .init(
                        name: name,
                        bytes: try file.size(),
                        // The active segment's dictionary may still be made again (a new
                        // segment of that name after a failed first write): copied each time.
                        sealed: name != SegmentName.quarantineManifest && name != SegmentName.retainedStart
                            && name != SegmentName.dictionary(activeSegment.base)
                    )
                )
            }
            return extra
        }
        // Index files of segments newer than the point, or of the point's active segment (sealed
        // meanwhile): not part of it.
        files += extra.filter { file in
            guard let base = UInt64(file.name.prefix(20)), file.name.hasSuffix("index") else { return true }
            return base < activeSegment.base
        }
        return LogBackupPoint(directory: directory, head: head, files: files)
    }
}

extension LogBackupPoint {
    /// Copies the point's files from its data directory into `destination` (created when
    /// missing), each up to its `bytes`, skipping sealed files the destination already holds
    /// with that size, and removes the destination's other log files (an earlier backup's active
    /// segment under another name stays only if the point names it). Blocking: run it off the
    /// cooperative pool. `progress` gets the bytes copied so far and the total to copy.
    public func copy(
        to destination: String,
        fileSystem: any LogFileSystem = PosixFileSystem(),
        progress: ((Int64, Int64) -> Void)? = nil
    ) throws -> LogBackupCopyReport {
        try fileSystem.createDirectory(at: destination)
        var report = LogBackupCopyReport()
        var toCopy: [File] = []
        for file in files {
            let target = joinPath(destination, file.name)
            if file.sealed, fileSystem.fileExists(at: target),
                let existing = try? fileSystem.openFile(at: target, mode: .readOnly)
            {
                let size = try? existing.size()
                try? existing.close()
                if size == file.bytes {
                    report.filesKept += 1
                    continue
                }
            }
            toCopy.append(file)
        }
        let total = toCopy.reduce(Int64(0)) { $0 + $1.bytes }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for file in toCopy {
            let input = try fileSystem.openFile(at: joinPath(directory, file.name), mode: .readOnly)
            defer { try? input.close() }
            let temporary = joinPath(destination, file.name + SegmentName.temporarySuffix)
            let output = try fileSystem.openFile(at: temporary, mode: .createOrTruncate)
            var offset: Int64 = 0
            do {
                while offset < file.bytes {
                    let want = Int(min(Int64(buffer.count), file.bytes - offset))
                    let read = try buffer.withUnsafeMutableBytes {
                        try input.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]), at: offset)
                    }
                    guard read > 0 else {
                        throw LogError(.corruption, "\(file.name) ends at byte \(offset), before the \(file.bytes) bytes the backup point names")
                    }
                    try buffer.withUnsafeBytes { try output.write(UnsafeRawBufferPointer(rebasing: $0[0..<read]), at: offset) }
                    offset += Int64(read)
                    report.bytesCopied += Int64(read)
                    progress?(report.bytesCopied, total)
                }
                try output.synchronize()
                try output.close()
            } catch {
                try? output.close()
                try? fileSystem.removeFile(at: temporary)
                throw error
            }
            try fileSystem.rename(from: temporary, to: joinPath(destination, file.name))
            report.filesCopied += 1
        }
        // Log files of an earlier backup that this point does not name (a segment since renamed
        // by nothing: only the active copy's index files, or temporary files) go.
        let named = Set(files.map(\.name))
        for name in try fileSystem.contentsOfDirectory(at: destination) where !named.contains(name) {
            let isLogFile =
                SegmentName.baseSeq(ofSegment: name) != nil || name.hasSuffix(".index") || name.hasSuffix(".timeindex")
                || name.hasSuffix(SegmentName.dictionarySuffix) || name.contains(".quarantine-") || name == SegmentName.quarantineManifest
                || name.hasSuffix(SegmentName.temporarySuffix)
            if isLogFile { try fileSystem.removeFile(at: joinPath(destination, name)) }
        }
        try fileSystem.synchronizeDirectory(at: destination)
        return report
    }
}
