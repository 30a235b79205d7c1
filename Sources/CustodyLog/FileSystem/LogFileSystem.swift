import SystemPackage

/// The file operations the log performs, and nothing more.
///
/// Every byte the log reads or writes goes through this protocol, so that tests can put a
/// ``FaultInjectingFileSystem`` between the log and the disk: drop unsynced bytes on a simulated
/// crash, tear a write, fail an fsync, run out of space.
///
/// Calls block: the log only makes them from its I/O thread pool, never from an actor's executor.
/// Failures are thrown as `Errno` values (from swift-system), as the kernel reports them.
public protocol LogFileSystem: Sendable {
    /// Creates the directory (and missing parents); succeeds when it already exists.
    func createDirectory(at path: String) throws
    /// The names (not paths) of the entries in a directory.
    func contentsOfDirectory(at path: String) throws -> [String]
    func fileExists(at path: String) -> Bool
    func openFile(at path: String, mode: LogFileOpenMode) throws -> any LogFile
    func removeFile(at path: String) throws
    /// Atomically replaces `destination` with `source` (POSIX `rename`).
    func rename(from source: String, to destination: String) throws
    /// Makes the directory's entries (creations, renames, removals) durable.
    func synchronizeDirectory(at path: String) throws
    /// Takes an exclusive advisory lock that lasts as long as the returned file stays open
    /// (and ends when the process dies); throws when another process holds it.
    func lockFile(at path: String) throws -> any LogFile
}

/// How ``LogFileSystem/openFile(at:mode:)`` opens a file.
public enum LogFileOpenMode: Sendable {
    /// An existing file, for reading.
    case readOnly
    /// An existing file, for reading and writing.
    case readWrite
    /// A new file for reading and writing; fails when the path exists.
    case createNew
    /// A file for reading and writing, created when missing and emptied when present.
    case createOrTruncate
}

/// An open file. Reads and writes are positional (`pread`/`pwrite`): a file has no cursor, so a
/// handle may be shared by readers on several threads.
public protocol LogFile: Sendable {
    func size() throws -> Int64
    /// Writes all of `bytes` at `offset`, or throws. A throw may leave a prefix written.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws
    /// Reads up to `buffer.count` bytes at `offset`; returns how many were read (0 at the end).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int
    /// Makes the file's written data durable (`fdatasync`).
    func synchronize() throws
    func truncate(to size: Int64) throws
    func close() throws
}

extension LogFile {
    /// Reads exactly `count` bytes at `offset`, or fewer only when the file ends first.
    public func read(count: Int, at offset: Int64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        try bytes.withUnsafeMutableBytes { buffer in
            while filled < count {
                let n = try self.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]), at: offset + Int64(filled))
                if n == 0 { break }
                filled += n
            }
        }
        if filled < count { bytes.removeLast(count - filled) }
        return bytes
    }

    public func write(_ bytes: [UInt8], at offset: Int64) throws {
        try bytes.withUnsafeBytes { try self.write($0, at: offset) }
    }
}

/// Joins a directory and a file name.
@inline(__always)
func joinPath(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}
