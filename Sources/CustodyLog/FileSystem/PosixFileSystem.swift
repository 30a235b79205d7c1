import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The real file system, through swift-system's `FileDescriptor` and the POSIX calls it lacks
/// (`fdatasync`, `fsync` of a directory, `flock`).
public struct PosixFileSystem: LogFileSystem {
    public init() {}

    public func createDirectory(at path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw Errno(rawValue: errno)
            }
            prefix += "/"
        }
    }

    public func contentsOfDirectory(at path: String) throws -> [String] {
        guard let directory = opendir(path) else { throw Errno(rawValue: errno) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func fileExists(at path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public func openFile(at path: String, mode: LogFileOpenMode) throws -> any LogFile {
        let descriptor: FileDescriptor
        switch mode {
        case .readOnly:
            descriptor = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        case .readWrite:
            descriptor = try FileDescriptor.open(path, .readWrite, options: [.closeOnExec])
        case .createNew:
            descriptor = try FileDescriptor.open(
                path,
                .readWrite,
                options: [.create, .exclusiveCreate, .closeOnExec],
                permissions: [.ownerReadWrite, .groupRead]
            )
        case .createOrTruncate:
            descriptor = try FileDescriptor.open(
                path,
                .readWrite,
                options: [.create, .truncate, .closeOnExec],
                permissions: [.ownerReadWrite, .groupRead]
            )
        }
        return PosixLogFile(descriptor: descriptor)
    }

    public func removeFile(at path: String) throws {
        if unlink(path) != 0 { throw Errno(rawValue: errno) }
    }

    public func rename(from source: String, to destination: String) throws {
        if Glibc.rename(source, destination) != 0 { throw Errno(rawValue: errno) }
    }

    public func synchronizeDirectory(at path: String) throws {
        let descriptor = try FileDescriptor.open(path, .readOnly, options: [.directory, .closeOnExec])
        defer { try? descriptor.close() }
        if fsync(descriptor.rawValue) != 0 { throw Errno(rawValue: errno) }
    }

    public func lockFile(at path: String) throws -> any LogFile {
        let descriptor = try FileDescriptor.open(
            path,
            .readWrite,
            options: [.create, .closeOnExec],
            permissions: [.ownerReadWrite, .groupRead]
        )
        if flock(descriptor.rawValue, LOCK_EX | LOCK_NB) != 0 {
            let error = Errno(rawValue: errno)
            try? descriptor.close()
            throw error
        }
        return PosixLogFile(descriptor: descriptor)
    }
}

/// An open file descriptor. `FileDescriptor` is a plain integer and every operation on it is
/// positional, so sharing one between threads is safe.
struct PosixLogFile: LogFile {
    let descriptor: FileDescriptor

    func size() throws -> Int64 {
        var info = stat()
        if fstat(descriptor.rawValue, &info) != 0 { throw Errno(rawValue: errno) }
        return Int64(info.st_size)
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        _ = try descriptor.writeAll(toAbsoluteOffset: offset, bytes)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        try descriptor.read(fromAbsoluteOffset: offset, into: buffer)
    }

    func synchronize() throws {
        while fdatasync(descriptor.rawValue) != 0 {
            if errno != EINTR { throw Errno(rawValue: errno) }
        }
    }

    func truncate(to size: Int64) throws {
        try descriptor.resize(to: size)
    }

    func close() throws {
        try descriptor.close()
    }
}
