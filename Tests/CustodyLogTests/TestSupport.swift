import CustodyLog
import CustodyLogTesting
import Foundation
import Logging
import NIOCore
import Testing

/// Reads every record of the log, in order.
func readAll(_ log: SegmentLog, from seq: UInt64 = 1) async throws -> [LogRecord] {
    var records: [LogRecord] = []
    var next = seq
    while true {
        let batch = try await log.read(from: next, maxRecords: 50_000)
        guard let last = batch.last else { return records }
        records.append(contentsOf: batch)
        next = last.seq + 1
    }
}

extension ByteBuffer {
    var text: String { String(buffer: self) }
}

func payloads(_ texts: [String]) -> [ByteBuffer] { texts.map { ByteBuffer(string: $0) } }

func fileSize(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.size] as! NSNumber).intValue
}

func truncateFile(_ path: String, to size: Int) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try handle.truncate(atOffset: UInt64(size))
    try handle.close()
}

/// Copies a directory (to try many damages on the same log).
func copyDirectory(_ source: String, to destination: String) throws {
    try? FileManager.default.removeItem(atPath: destination)
    try FileManager.default.copyItem(atPath: source, toPath: destination)
}

/// Waits until `condition` holds, checking it every millisecond, for at most `timeout`: for
/// effects with no acknowledgement to await (a timer armed, a counter moved).
func waitUntil(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !(try await condition()) {
        guard ContinuousClock.now < deadline else {
            Issue.record("the condition did not hold within \(timeout)")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(1))
    }
}
