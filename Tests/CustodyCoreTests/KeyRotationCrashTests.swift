import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import Testing

/// A key rotation (``CheckpointWriter/rotateKey()``) is four steps: `KEY.next` written, the
/// announcing checkpoint appended, `KEY` renamed to `KEY.retired-ID`, `KEY.next` renamed to
/// `KEY`. A crash after any of them leaves files and a log that the next start reads right: the
/// key is the one the log announced (or the old one when nothing was announced), a lost
/// announcement is made again, and `custody log verify` passes, trusting the key in use.
@Suite struct KeyRotationCrashTests {
    /// Where a crash stopped the rotation.
    enum CrashPoint: CaseIterable {
        case newKeyWritten
        case announced
        case oldKeyRetired
        /// Both renames done, but the announcement was lost (acknowledged, not synchronized).
        case renamedButAnnouncementLost
    }

    @Test(arguments: CrashPoint.allCases) func aRotationInterruptedByACrashIsFinishedOrUndone(_ crash: CrashPoint) async throws {
        let directory = TemporaryDirectory("rotation")
        defer { directory.remove() }
        let keyPath = SigningKey.defaultPath(forDataDirectory: directory.path)
        try await Self.write(spans: 20, in: directory.path, trace: "before")
        let old = try SigningKey.load(from: keyPath)
        let new = SigningKey.generate()

        // The rotation's steps, up to the crash.
        try new.write(to: keyPath + ".next")
        if crash != .newKeyWritten {
            let log = try await openLog(directory: directory.path)
            let announcing = try LogCheckpoint(head: await log.chainHead, at: LogTime.now(), key: old, announcing: new)
            if crash != .renamedButAnnouncementLost { _ = try await log.append([EventCodec.encode(.logCheckpoint(announcing))]) }
            await log.close()
        }
        let retired = keyPath + ".retired-" + old.keyID
        if crash == .oldKeyRetired || crash == .renamedButAnnouncementLost { #expect(rename(keyPath, retired) == 0) }
        if crash == .renamedButAnnouncementLost { #expect(rename(keyPath + ".next", keyPath) == 0) }

        // The next start.
        let runtime = try await CoreRuntime.open(directory: directory.path)
        let inUse = try #require(await runtime.proofs.checkpoints?.publicKey)
        _ = try await runtime.logs.recordLog(
            .many((0..<5).map { _ in SpanInput(traceId: "after", source: "agent-factory", operation: "op") }),
            request: RequestTrace(traceId: "r-after")
        )
        await runtime.close()

        #expect(!FileManager.default.fileExists(atPath: keyPath + ".next"), "\(crash): KEY.next was left")
        let fileKey = try SigningKey.load(from: keyPath)
        #expect(fileKey.publicKey == inUse, "\(crash): the key in use is not the key file's")
        switch crash {
        case .newKeyWritten:
            // Never announced: thrown away, the old key stays.
            #expect(inUse == old.publicKey, "\(crash): the unannounced key was used")
            #expect(!FileManager.default.fileExists(atPath: retired))
        case .announced, .oldKeyRetired, .renamedButAnnouncementLost:
            #expect(inUse == new.publicKey, "\(crash): the announced key is not in use")
            #expect(try SigningKey.load(from: retired).publicKey == old.publicKey, "\(crash): the old key was not kept")
        }
        // The log: every checkpoint's key announced by the one before, the chain whole; the key
        // in use trusted.
        let report = try LogVerification.verify(directory: directory.path, receipts: [], checkpoint: nil, trustedKey: inUse)
        #expect(report.isClean, "\(crash): \(report.log.damage.prefix(3))")
        let expectedKeys = crash == .newKeyWritten ? [old.keyID] : [old.keyID, new.keyID]
        #expect(report.keyIDs == expectedKeys, "\(crash): signed by \(report.keyIDs)")
        // And once more: a start after the recovered one changes nothing.
        let again = try await CoreRuntime.open(directory: directory.path)
        #expect(await again.proofs.checkpoints?.publicKey == inUse)
        await again.close()
    }

    static func write(spans: Int, in directory: String, trace: String) async throws {
        let runtime = try await CoreRuntime.open(directory: directory)
        _ = try await runtime.logs.recordLog(
            .many((0..<spans).map { _ in SpanInput(traceId: trace, source: "agent-factory", operation: "op") }),
            request: RequestTrace(traceId: "r-\(trace)")
        )
        await runtime.close()
    }
}
