import CustodyLog
import Foundation
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a backup holds, written last into its directory (`custody-backup.json`): a directory
/// without it is not a backup a restore accepts (an interrupted one, or anything else).
public struct BackupManifest: Sendable, Hashable, Codable {
    /// The manifest's own format.
    public var format = 1
    /// The last seq the copy of the log holds, and the hash chain's value after it.
    public var headSeq: UInt64
    public var chain: String
    /// The seq the copied projections have applied (at most `headSeq`).
    public var projectionsAppliedSeq: UInt64
    /// When the backup was taken (RFC 3339).
    public var createdAt: String
    /// The log's files and their lengths.
    public var files: [LogBackupPoint.File]
    /// Whether the signing key was copied too (`signing-key`).
    public var includesKey: Bool

    public static let fileName = "custody-backup.json"
    public static let projectionsFileName = "projections.sqlite"
    public static let keyFileName = "signing-key"
}

/// What a backup or a restore did.
public struct BackupReport: Sendable, Hashable, Codable {
    public var directory: String
    public var headSeq: UInt64
    public var chain: String
    public var projectionsAppliedSeq: UInt64
    public var filesCopied: Int
    public var filesKept: Int
    public var bytesCopied: Int64
    public var includesKey: Bool
    public var seconds: Double
}

extension BackupReport {
    /// The report as the API answers it.
    public var jsonValue: JSONValue {
        .object([
            "directory": .string(directory), "head_seq": .integer(Int64(headSeq)), "chain": .string(chain),
            "projections_applied_seq": .integer(Int64(projectionsAppliedSeq)), "files_copied": .integer(Int64(filesCopied)),
            "files_kept": .integer(Int64(filesKept)), "bytes_copied": .integer(bytesCopied), "includes_key": .bool(includesKey),
            "seconds": .number(seconds),
        ])
    }
}

extension CoreRuntime {
    /// Writes a consistent copy of this runtime's data directory to `directory` while it serves
    /// (docs/operations.md, "Backup and restore"): the projections first, through SQLite's online
    /// backup, then the log's files up to its acknowledged head at that moment (sealed segments
    /// copied once across backups to the same directory, the active one up to the head), the
    /// signing key only when `includeKey`, and last the manifest. Until the manifest is written
    /// the directory is not a backup: an earlier one's manifest is removed first.
    ///
    /// `progress` gets the log's bytes copied so far and the total to copy.
    public func backup(
        to directory: String,
        includeKey: Bool = false,
        progress: (@Sendable (Int64, Int64) -> Void)? = nil
    ) async throws(CoreError) -> BackupReport {
        let started = ContinuousClock.now
        guard !directory.isEmpty else { throw CoreError.invalidArgument("to", "names the directory to write the backup to") }
        let keyPath = proofs.checkpoints?.settings.keyPath
        if includeKey && keyPath == nil {
            throw CoreError.invalidArgument("include_key", "this server's signing key is not in a file")
        }
        let fileManager = FileManager.default
        let directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        let manifestPath = directory + "/" + BackupManifest.fileName
        // Where the log's files are (the point is cheap to take): a backup inside the data
        // directory would be copied into itself.
        let source: String
        do {
            source = URL(fileURLWithPath: try await log.backupPoint().directory).standardizedFileURL.path
        } catch let error as LogError {
            throw CoreError(.invalidArgument, error.message)
        } catch {
            throw CoreError(.storageUnavailable, "the log cannot be backed up: \(error)")
        }
        guard directory != source && !directory.hasPrefix(source + "/") && !source.hasPrefix(directory + "/") else {
            throw CoreError(.invalidArgument, "a backup goes outside the data directory \(source), not in it or around it", field: "to")
        }
        // One backup into a directory at a time.
        guard Self.backupsRunning.withLock({ $0.insert(directory).inserted }) else {
            throw CoreError(.conflict, "a backup into \(directory) is already running")
        }
        defer { _ = Self.backupsRunning.withLock { $0.remove(directory) } }
        // No retention pass deletes the files being copied.
        await storage.acquire(Self.logFiles)
        defer { storage.release(Self.logFiles) }
        do {
            try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if fileManager.fileExists(atPath: manifestPath) { try fileManager.removeItem(atPath: manifestPath) }
        } catch {
            throw CoreError(.invalidArgument, "cannot write a backup to \(directory): \(error)", field: "to")
        }
        do {
            // The projections first: their copy has applied at most what the log's copy holds.
            let projectionsPath = directory + "/" + BackupManifest.projectionsFileName
            let temporary = projectionsPath + ".tmp"
            try? fileManager.removeItem(atPath: temporary)
            let applied = try await projector.store.backup(to: temporary)
            try? fileManager.removeItem(atPath: projectionsPath)
            try fileManager.moveItem(atPath: temporary, toPath: projectionsPath)
            // Copied whole every time: one file, its size in the report with the log's.
            let projectionsBytes = (try? fileManager.attributesOfItem(atPath: projectionsPath)[.size] as? NSNumber)?.int64Value ?? 0

            let point = try await log.backupPoint()
            let copied = try await NIOThreadPool.singleton.runIfActive {
                try point.copy(to: directory, progress: progress)
            }
            // The state snapshots retention took (immutable: one already there is kept).
            if let snapshots, fileManager.fileExists(atPath: snapshots.directory) {
                let target = directory + "/snapshots"
                try fileManager.createDirectory(atPath: target, withIntermediateDirectories: true)
                let names = Set(snapshots.all().map(\.name))
                for name in try fileManager.contentsOfDirectory(atPath: target) where !names.contains(name) {
                    try fileManager.removeItem(atPath: target + "/" + name)
                }
                for name in names where !fileManager.fileExists(atPath: target + "/" + name) {
                    try fileManager.copyItem(atPath: snapshots.path(named: name), toPath: target + "/" + name + ".tmp")
                    try Self.synchronize(target + "/" + name + ".tmp")
                    try fileManager.moveItem(atPath: target + "/" + name + ".tmp", toPath: target + "/" + name)
                }
                try Self.synchronize(target)
            }
            let keyCopy = directory + "/" + BackupManifest.keyFileName
            try? fileManager.removeItem(atPath: keyCopy)
            if includeKey, let keyPath {
                try fileManager.copyItem(atPath: keyPath, toPath: keyCopy)
                try fileManager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyCopy)
            }
            let manifest = BackupManifest(
                headSeq: point.head.seq,
                chain: point.head.chain.hex,
                projectionsAppliedSeq: applied,
                createdAt: RFC3339.format(LogTime.now()),
                files: point.files,
                includesKey: includeKey
            )
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            try await NIOThreadPool.singleton.runIfActive {
                try Self.writeDurably(try encoder.encode(manifest), to: manifestPath)
            }
            return BackupReport(
                directory: directory,
                headSeq: point.head.seq,
                chain: point.head.chain.hex,
                projectionsAppliedSeq: applied,
                filesCopied: copied.filesCopied + 1,
                filesKept: copied.filesKept,
                bytesCopied: copied.bytesCopied + projectionsBytes,
                includesKey: includeKey,
                seconds: (ContinuousClock.now - started).inSeconds
            )
        } catch let error as CoreError {
            throw error
        } catch let error as LogError where error.code == .invalidArgument {
            throw CoreError(.invalidArgument, error.message)
        } catch {
            throw CoreError(.storageUnavailable, "the backup to \(directory) failed: \(error)")
        }
    }

    /// Checks the backup in `backup` and installs it as the data directory `dataDirectory` (which
    /// must not exist, or be empty): the manifest must be there (else the backup was interrupted,
    /// or is not one), every file of the log at its recorded length, and `log verify` of the copy
    /// clean with the hash chain reaching the manifest's head and value. The files are copied to
    /// a temporary directory beside `dataDirectory` and renamed into place; a copied signing key
    /// goes beside it (`DATA_DIR.signing-key`) unless one is there.
    public static func restore(from backup: String, to dataDirectory: String) async throws(CoreError) -> BackupReport {
        let started = ContinuousClock.now
        let fileManager = FileManager.default
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard let data = fileManager.contents(atPath: backup + "/" + BackupManifest.fileName),
            let manifest = try? decoder.decode(BackupManifest.self, from: data)
        else {
            throw CoreError(
                .invalidArgument,
                "\(backup) is not a complete backup: it has no \(BackupManifest.fileName) (an interrupted backup, or not a backup)",
                field: "from"
            )
        }
        guard manifest.format == 1, let chain = ChainValue(hex: manifest.chain) else {
            throw CoreError(.invalidArgument, "\(backup)/\(BackupManifest.fileName) is of an unknown format", field: "from")
        }
        if let existing = try? fileManager.contentsOfDirectory(atPath: dataDirectory), !existing.isEmpty {
            throw CoreError(.conflict, "\(dataDirectory) is not empty: restore into a new data directory")
        }
        do {
            for file in manifest.files {
                let size = (try fileManager.attributesOfItem(atPath: backup + "/" + file.name)[.size] as? NSNumber)?.int64Value
                guard size == file.bytes else {
                    throw CoreError(
                        .invalidArgument,
                        "\(file.name) in the backup holds \(size.map(String.init) ?? "nothing") bytes, not \(file.bytes)",
                        field: "from"
                    )
                }
            }
            guard fileManager.fileExists(atPath: backup + "/" + BackupManifest.projectionsFileName) else {
                throw CoreError(.invalidArgument, "the backup has no \(BackupManifest.projectionsFileName)")
            }
            let claim = ChainClaim(seq: manifest.headSeq, chain: chain, source: "the backup's manifest")
            let verification = try await NIOThreadPool.singleton.runIfActive {
                try LogDirectory(path: backup).verify(claims: manifest.headSeq > 0 ? [claim] : [])
            }
            guard verification.isClean else {
                throw CoreError(
                    .invalidArgument,
                    "the backup's log does not verify: \(verification.damage.prefix(3).map { "\($0)" }.joined(separator: "; "))"
                )
            }
            guard (verification.chainHead?.seq ?? 0) == manifest.headSeq, verification.claims.allSatisfy(\.holds) else {
                throw CoreError(
                    .invalidArgument,
                    "the backup's log ends at seq \(verification.chainHead?.seq ?? 0), and its manifest says \(manifest.headSeq) with chain \(manifest.chain)"
                )
            }
            let staging = dataDirectory + ".restoring"
            try? fileManager.removeItem(atPath: staging)
            try fileManager.createDirectory(atPath: staging, withIntermediateDirectories: true)
            var bytes: Int64 = 0
            for name in manifest.files.map(\.name) + [BackupManifest.projectionsFileName] {
                try fileManager.copyItem(atPath: backup + "/" + name, toPath: staging + "/" + name)
                bytes += (try fileManager.attributesOfItem(atPath: staging + "/" + name)[.size] as? NSNumber)?.int64Value ?? 0
            }
            if fileManager.fileExists(atPath: backup + "/snapshots") {
                try fileManager.copyItem(atPath: backup + "/snapshots", toPath: staging + "/snapshots")
            }
            try await NIOThreadPool.singleton.runIfActive {
                for name in try fileManager.contentsOfDirectory(atPath: staging) { try Self.synchronize(staging + "/" + name) }
                for name in (try? fileManager.contentsOfDirectory(atPath: staging + "/snapshots")) ?? [] {
                    try Self.synchronize(staging + "/snapshots/" + name)
                }
                try Self.synchronize(staging)
            }
            if fileManager.fileExists(atPath: dataDirectory) { try fileManager.removeItem(atPath: dataDirectory) }
            try fileManager.moveItem(atPath: staging, toPath: dataDirectory)
            let keyCopy = backup + "/" + BackupManifest.keyFileName
            let keyBeside = SigningKey.defaultPath(forDataDirectory: dataDirectory)
            if manifest.includesKey, fileManager.fileExists(atPath: keyCopy), !fileManager.fileExists(atPath: keyBeside) {
                try fileManager.copyItem(atPath: keyCopy, toPath: keyBeside)
                try fileManager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyBeside)
            }
            return BackupReport(
                directory: dataDirectory,
                headSeq: manifest.headSeq,
                chain: manifest.chain,
                projectionsAppliedSeq: manifest.projectionsAppliedSeq,
                filesCopied: manifest.files.count + 1,
                filesKept: 0,
                bytesCopied: bytes,
                includesKey: manifest.includesKey,
                seconds: (ContinuousClock.now - started).inSeconds
            )
        } catch let error as CoreError {
            throw error
        } catch {
            throw CoreError(.storageUnavailable, "restoring \(backup) into \(dataDirectory) failed: \(error)")
        }
    }

    /// The directories backups of this process are writing to now.
    static let backupsRunning = Mutex<Set<String>>([])

    /// Writes `data` to `path` through a temporary file, synchronized, then renamed, with the
    /// directory synchronized after.
    static func writeDurably(_ data: Data, to path: String) throws {
        let temporary = path + ".tmp"
        try data.write(to: URL(fileURLWithPath: temporary))
        try synchronize(temporary)
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
        try synchronize((path as NSString).deletingLastPathComponent)
    }

    /// `fsync` of a file or directory.
    static func synchronize(_ path: String) throws {
        let descriptor = Glibc.open(path, O_RDONLY)
        guard descriptor >= 0 else { throw CoreError(.storageUnavailable, "cannot open \(path) to synchronize it") }
        defer { Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else { throw CoreError(.storageUnavailable, "fsync of \(path) failed") }
    }
}
