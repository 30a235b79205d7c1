import CustodyLog
import Synchronization
import SystemPackage

/// A ``LogFileSystem`` over real files that can fail on command and simulate a power loss.
///
/// It passes every call through to ``PosixFileSystem`` and keeps the book a disk cache would:
/// how long each file is, how much of it has been made durable by `synchronize()`, and which
/// directory entries (creations, renames, removals) have not yet been made durable by
/// `synchronizeDirectory(at:)`. ``simulateCrash(seed:)`` then applies what a power loss may do:
/// each file keeps its durable bytes and a random prefix of the rest (sometimes with the kept
/// unsynced part zeroed, as a filesystem may show an extent that was allocated but not written),
/// and a random prefix of the pending directory operations survives while the rest is undone.
///
/// Faults to arm:
/// - ``crash(afterOperations:)``: after N more mutating calls, every call fails with `EIO`; the
///   call at the crash point is cut short (a write leaves a random prefix).
/// - ``failNextSynchronize(count:)``: the next `synchronize()` calls fail with `EIO`.
/// - ``tearNextWrite()``: the next write leaves a random prefix and fails with `EIO`.
/// - ``spaceLimit``: writes that would grow the files past the limit write what fits and fail
///   with `ENOSPC`.
///
/// The bookkeeping is held in a `Mutex`; the lock is never held across I/O except in
/// ``simulateCrash(seed:)``, which runs when the log under test is no longer in use.
public final class FaultInjectingFileSystem: LogFileSystem {
    struct TrackedFile {
        var length: Int64
        var durableLength: Int64
    }

    enum DirectoryOperation {
        case created(path: String)
        case renamed(from: String, to: String, replacedBackup: String?, moved: TrackedFile?, replaced: TrackedFile?)
        case removed(path: String, backup: String, tracked: TrackedFile?)
    }

    struct State {
        var files: [String: TrackedFile] = [:]
        var pendingDirectoryOperations: [DirectoryOperation] = []
        var operationsUntilCrash: Int?
        var crashed = false
        var failingSynchronizations = 0
        var tearNextWrite = false
        var spaceLimit: Int64?
        var random = SplitMix64(seed: 0x5EED)
        var backupCounter = 0
        var mutatingOperations = 0
    }

    let base = PosixFileSystem()
    let state = Mutex(State())

    public init(seed: UInt64 = 0x5EED) {
        state.withLock { $0.random = SplitMix64(seed: seed) }
    }

    // MARK: Arming faults

    /// After `count` more mutating calls the "machine" stops: that call is cut short and every
    /// later call fails with `EIO`, until ``simulateCrash(seed:)``.
    public func crash(afterOperations count: Int) {
        state.withLock { $0.operationsUntilCrash = count }
    }

    public func failNextSynchronize(count: Int = 1) {
        state.withLock { $0.failingSynchronizations = count }
    }

    public func tearNextWrite() {
        state.withLock { $0.tearNextWrite = true }
    }

    /// The most bytes all tracked files may hold together; `nil` for no limit.
    public var spaceLimit: Int64? {
        get { state.withLock { $0.spaceLimit } }
        set { state.withLock { $0.spaceLimit = newValue } }
    }

    /// How many mutating calls have been made (to choose crash points).
    public var mutatingOperationCount: Int { state.withLock { $0.mutatingOperations } }

    public var hasCrashed: Bool { state.withLock { $0.crashed } }

    /// Applies a power loss to the files on disk, as described on the type, and clears every
    /// armed fault so the directory can be opened again.
    public func simulateCrash(seed: UInt64) throws {
        try state.withLock { state in
            var random = SplitMix64(seed: seed)
            // A random prefix of the pending directory operations survives; undo the rest, newest first.
            let kept = Int(random.next(upperBound: UInt64(state.pendingDirectoryOperations.count + 1)))
            for operation in state.pendingDirectoryOperations[kept...].reversed() {
                switch operation {
                case .created(let path):
                    try? base.removeFile(at: path)
                    state.files[path] = nil
                case .renamed(let from, let to, let replacedBackup, let moved, let replaced):
                    try base.rename(from: to, to: from)
                    state.files[from] = moved
                    state.files[to] = replaced
                    if let replacedBackup { try base.rename(from: replacedBackup, to: to) }
                case .removed(let path, let backup, let tracked):
                    try base.rename(from: backup, to: path)
                    state.files[path] = tracked
                }
            }
            for operation in state.pendingDirectoryOperations[..<kept] {
                switch operation {
                case .renamed(_, _, let replacedBackup?, _, _): try? base.removeFile(at: replacedBackup)
                case .removed(_, let backup, _): try? base.removeFile(at: backup)
                default: break
                }
            }
            state.pendingDirectoryOperations = []
            // Each file keeps its durable bytes and a random prefix of the rest.
            for (path, tracked) in state.files.sorted(by: { $0.key < $1.key }) {
                guard base.fileExists(at: path), tracked.length > tracked.durableLength else { continue }
                let volatile = tracked.length - tracked.durableLength
                let survives = Int64(random.next(upperBound: UInt64(volatile + 1)))
                let file = try base.openFile(at: path, mode: .readWrite)
                defer { try? file.close() }
                try file.truncate(to: tracked.durableLength + survives)
                if survives > 0 && random.next(upperBound: 4) == 0 {
                    let zeros = [UInt8](repeating: 0, count: Int(random.next(upperBound: UInt64(survives)) + 1))
                    try file.write(zeros, at: tracked.durableLength + survives - Int64(zeros.count))
                }
                try file.synchronize()
                state.files[path] = TrackedFile(length: tracked.durableLength + survives, durableLength: tracked.durableLength + survives)
            }
            state.operationsUntilCrash = nil
            state.crashed = false
            state.failingSynchronizations = 0
            state.tearNextWrite = false
            state.spaceLimit = nil
        }
    }

    // MARK: Bookkeeping

    enum Admission {
        case proceed
        /// The crash point: cut the operation short, then fail.
        case crashNow
    }

    func admitMutation() throws -> Admission {
        try state.withLock { state in
            if state.crashed { throw Errno.ioError }
            state.mutatingOperations += 1
            if let remaining = state.operationsUntilCrash {
                if remaining <= 0 {
                    state.crashed = true
                    return .crashNow
                }
                state.operationsUntilCrash = remaining - 1
            }
            return .proceed
        }
    }

    func track(_ path: String, length: Int64) {
        state.withLock { state in
            if state.files[path] == nil { state.files[path] = TrackedFile(length: length, durableLength: length) }
        }
    }

    func randomNumber(upperBound: UInt64) -> UInt64 {
        state.withLock { $0.random.next(upperBound: upperBound) }
    }

    func nextBackupPath(for path: String) -> String {
        state.withLock { state in
            state.backupCounter += 1
            return path + ".fault-backup-\(state.backupCounter)"
        }
    }

    // MARK: LogFileSystem

    public func createDirectory(at path: String) throws {
        _ = try admitMutation()
        try base.createDirectory(at: path)
    }

    public func contentsOfDirectory(at path: String) throws -> [String] {
        try base.contentsOfDirectory(at: path).filter { !$0.contains(".fault-backup-") }
    }

    public func fileExists(at path: String) -> Bool {
        base.fileExists(at: path)
    }

    public func openFile(at path: String, mode: LogFileOpenMode) throws -> any LogFile {
        switch mode {
        case .readOnly:
            return FaultInjectingLogFile(path: path, file: try base.openFile(at: path, mode: mode), fileSystem: self, writable: false)
        case .readWrite:
            let file = try base.openFile(at: path, mode: mode)
            track(path, length: try file.size())
            return FaultInjectingLogFile(path: path, file: file, fileSystem: self, writable: true)
        case .createNew, .createOrTruncate:
            if try admitMutation() == .crashNow { throw Errno.ioError }
            let existed = base.fileExists(at: path)
            if existed, mode == .createOrTruncate {
                // Replacing a file's contents in place is not something the log does; treat it as
                // truncating to zero durably so that the model stays simple and pessimistic.
                let file = try base.openFile(at: path, mode: mode)
                state.withLock { $0.files[path] = TrackedFile(length: 0, durableLength: 0) }
                return FaultInjectingLogFile(path: path, file: file, fileSystem: self, writable: true)
            }
            let file = try base.openFile(at: path, mode: mode)
            state.withLock { state in
                state.files[path] = TrackedFile(length: 0, durableLength: 0)
                state.pendingDirectoryOperations.append(.created(path: path))
            }
            return FaultInjectingLogFile(path: path, file: file, fileSystem: self, writable: true)
        }
    }

    public func removeFile(at path: String) throws {
        if try admitMutation() == .crashNow { throw Errno.ioError }
        let backup = nextBackupPath(for: path)
        try base.rename(from: path, to: backup)
        state.withLock { state in
            let tracked = state.files.removeValue(forKey: path)
            state.pendingDirectoryOperations.append(.removed(path: path, backup: backup, tracked: tracked))
        }
    }

    public func rename(from source: String, to destination: String) throws {
        if try admitMutation() == .crashNow { throw Errno.ioError }
        var replacedBackup: String?
        if base.fileExists(at: destination) {
            let backup = nextBackupPath(for: destination)
            // Keep the replaced file's bytes (hard to undo a rename otherwise): copy, do not move,
            // so that the rename below still replaces an existing entry as the real one would.
            try copyFile(from: destination, to: backup)
            replacedBackup = backup
        }
        try base.rename(from: source, to: destination)
        state.withLock { state in
            let moved = state.files.removeValue(forKey: source)
            let replaced = state.files[destination]
            state.files[destination] = moved
            state.pendingDirectoryOperations.append(
                .renamed(from: source, to: destination, replacedBackup: replacedBackup, moved: moved, replaced: replaced)
            )
        }
    }

    public func synchronizeDirectory(at path: String) throws {
        if try admitMutation() == .crashNow { throw Errno.ioError }
        try base.synchronizeDirectory(at: path)
        let directory = path.hasSuffix("/") ? path : path + "/"
        state.withLock { state in
            state.pendingDirectoryOperations.removeAll { operation in
                let affected: String
                switch operation {
                case .created(let p): affected = p
                case .renamed(_, let to, _, _, _): affected = to
                case .removed(let p, _, _): affected = p
                }
                let isInDirectory = affected.hasPrefix(directory) && !affected.dropFirst(directory.count).contains("/")
                if isInDirectory {
                    switch operation {
                    case .renamed(_, _, let backup?, _, _): try? base.removeFile(at: backup)
                    case .removed(_, let backup, _): try? base.removeFile(at: backup)
                    default: break
                    }
                }
                return isInDirectory
            }
        }
    }

    public func lockFile(at path: String) throws -> any LogFile {
        try base.lockFile(at: path)
    }

    private func copyFile(from source: String, to destination: String) throws {
        let input = try base.openFile(at: source, mode: .readOnly)
        defer { try? input.close() }
        let output = try base.openFile(at: destination, mode: .createOrTruncate)
        defer { try? output.close() }
        let bytes = try input.read(count: Int(try input.size()), at: 0)
        try output.write(bytes, at: 0)
    }
}

/// A file opened through a ``FaultInjectingFileSystem``.
struct FaultInjectingLogFile: LogFile {
    let path: String
    let file: any LogFile
    let fileSystem: FaultInjectingFileSystem
    let writable: Bool

    func size() throws -> Int64 { try file.size() }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        try file.read(into: buffer, at: offset)
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        let admission = try fileSystem.admitMutation()
        enum Outcome {
            case whole
            case prefix(Int, Errno)
        }
        let outcome: Outcome = fileSystem.state.withLock { state in
            if admission == .crashNow {
                return .prefix(Int(state.random.next(upperBound: UInt64(bytes.count + 1))), .ioError)
            }
            if state.tearNextWrite {
                state.tearNextWrite = false
                return .prefix(Int(state.random.next(upperBound: UInt64(bytes.count))), .ioError)
            }
            if let limit = state.spaceLimit {
                let used = state.files.values.reduce(Int64(0)) { $0 + $1.length }
                let current = state.files[path]?.length ?? 0
                let growth = max(0, offset + Int64(bytes.count) - current)
                if used + growth > limit {
                    let room = max(0, limit - used)
                    return .prefix(Int(max(0, min(Int64(bytes.count), current + room - offset))), .noSpace)
                }
            }
            return .whole
        }
        switch outcome {
        case .whole:
            try file.write(bytes, at: offset)
            record(writtenUpTo: offset + Int64(bytes.count))
        case .prefix(let count, let error):
            if count > 0 {
                try file.write(UnsafeRawBufferPointer(rebasing: bytes[..<count]), at: offset)
                record(writtenUpTo: offset + Int64(count))
            }
            throw error
        }
    }

    private func record(writtenUpTo end: Int64) {
        fileSystem.state.withLock { state in
            var tracked = state.files[path] ?? .init(length: 0, durableLength: 0)
            tracked.length = max(tracked.length, end)
            state.files[path] = tracked
        }
    }

    func synchronize() throws {
        if try fileSystem.admitMutation() == .crashNow { throw Errno.ioError }
        let fail = fileSystem.state.withLock { state in
            if state.failingSynchronizations > 0 {
                state.failingSynchronizations -= 1
                return true
            }
            return false
        }
        if fail { throw Errno.ioError }
        try file.synchronize()
        fileSystem.state.withLock { state in
            if var tracked = state.files[path] {
                tracked.durableLength = tracked.length
                state.files[path] = tracked
            }
        }
    }

    func truncate(to size: Int64) throws {
        if try fileSystem.admitMutation() == .crashNow { throw Errno.ioError }
        try file.truncate(to: size)
        fileSystem.state.withLock { state in
            var tracked = state.files[path] ?? .init(length: size, durableLength: size)
            tracked.length = size
            tracked.durableLength = min(tracked.durableLength, size)
            state.files[path] = tracked
        }
    }

    func close() throws { try file.close() }
}
