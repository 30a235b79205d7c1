import CustodyLog
import Foundation
import Logging

/// A fresh directory under the system's temporary directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ name: String = "log") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("custody-test-\(name)-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    /// Removes the directory and the checkpoint signing keys a server created beside it
    /// (``removeDataDirectory(_:)``).
    public func remove() {
        removeDataDirectory(path)
    }

    /// The segment files' names, in order.
    public func segments() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".log") }.sorted()
    }
}

/// Removes a data directory a test made and the checkpoint signing key files a server created
/// beside it: `PATH.signing-key`, and a rotation's `.next` and `.retired-ID` files.
public func removeDataDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
    let parent = (path as NSString).deletingLastPathComponent
    let keyName = (path as NSString).lastPathComponent + ".signing-key"
    for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix(keyName) {
        try? FileManager.default.removeItem(atPath: parent + "/" + name)
    }
}

/// Opens a log with a logger that stays silent (tests assert on reports and errors), so test output stays short.
public func openLog(
    directory: String,
    configuration: LogConfiguration = LogConfiguration(),
    damagePolicy: DamagePolicy = .refuse,
    acknowledged: AcknowledgedMark? = nil,
    fileSystem: any LogFileSystem = PosixFileSystem()
) async throws -> SegmentLog {
    var logger = Logger(label: "custody.log.test")
    logger.logLevel = .critical
    return try await SegmentLog.open(
        directory: directory,
        configuration: configuration,
        damagePolicy: damagePolicy,
        acknowledged: acknowledged,
        fileSystem: fileSystem,
        logger: logger
    )
}

/// Flips one bit of a file in place.
public func flipBit(in path: String, at offset: Int, bit: Int = 0) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: UInt64(offset))
    let byte = try handle.read(upToCount: 1)![0]
    try handle.seek(toOffset: UInt64(offset))
    try handle.write(contentsOf: [byte ^ UInt8(1 << bit)])
}
