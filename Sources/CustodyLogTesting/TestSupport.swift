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

    /// Removes the directory and the checkpoint signing key a server created beside it
    /// (`PATH.signing-key`).
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.removeItem(atPath: path + ".signing-key")
    }

    /// The segment files' names, in order.
    public func segments() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".log") }.sorted()
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
