import CustodyLog
import CustodyLogTesting
import Foundation
import NIOCore
import Testing

/// I/O errors while the log runs (R4, R5): no acknowledgement for data that was not made durable,
/// the segment is sealed, appends fail until a new segment can be written, and then resume.
@Suite struct FaultTests {
    @Test func aFailedFsyncIsNeverAcknowledgedAndSealsTheSegment() async throws {
        let directory = TemporaryDirectory("fsync-fail")
        defer { directory.remove() }
        let fileSystem = FaultInjectingFileSystem()
        let log = try await openLog(directory: directory.path, fileSystem: fileSystem)
        _ = try await log.append(payloads(["a", "b"]))
        fileSystem.failNextSynchronize()
        do {
            _ = try await log.append(payloads(["lost-1", "lost-2"]))
            Issue.record("an append was acknowledged although its fsync failed")
        } catch let error as LogError {
            #expect(error.code == .storageUnavailable)
        }
        // Readers never see the records whose fsync failed.
        #expect(try await readAll(log).map(\.payload.text) == ["a", "b"])
        #expect(await log.status().failure != nil)
        // The next append starts a new segment and takes the next seq: no gap, no reuse of the
        // failed bytes.
        let next = try await log.append(ByteBuffer(string: "c"))
        #expect(next.seqs == 3...3)
        let status = await log.status()
        #expect(status.failure == nil)
        #expect(status.segments.map(\.sealed) == [true, false])
        #expect(status.segments.first?.endSeq == 3)
        #expect(try await readAll(log).map(\.payload.text) == ["a", "b", "c"])
        await log.close()
        let reopened = try await openLog(directory: directory.path)
        #expect(try await readAll(reopened).map(\.payload.text) == ["a", "b", "c"])
        #expect(!reopened.recoveryReport.foundDamage)
        await reopened.close()
        #expect(try LogDirectory(path: directory.path).verify().isClean)
    }

    @Test func diskFullFailsAppendsWithoutDamageAndIngestResumesWhenSpaceIsFreed() async throws {
        let directory = TemporaryDirectory("disk-full")
        defer { directory.remove() }
        let fileSystem = FaultInjectingFileSystem()
        let log = try await openLog(directory: directory.path, configuration: LogConfiguration(segmentBytes: 4096), fileSystem: fileSystem)
        fileSystem.spaceLimit = 6000
        var acknowledged: [String] = []
        var refused = 0
        for i in 0..<100 {
            let text = "event \(i) " + String(repeating: "\(i % 10)", count: 150)
            do {
                _ = try await log.append(ByteBuffer(string: text))
                acknowledged.append(text)
            } catch let error as LogError {
                #expect(error.code == .storageUnavailable)
                refused += 1
            }
        }
        #expect(refused > 0 && acknowledged.count > 5)
        #expect(try await readAll(log).map(\.payload.text) == acknowledged)
        // Space comes back: the next append goes through by itself.
        fileSystem.spaceLimit = nil
        _ = try await log.append(ByteBuffer(string: "after"))
        acknowledged.append("after")
        #expect(try await readAll(log).map(\.payload.text) == acknowledged)
        await log.close()
        let reopened = try await openLog(directory: directory.path)
        #expect(try await readAll(reopened).map(\.payload.text) == acknowledged)
        await reopened.close()
        let verification = try LogDirectory(path: directory.path).verify()
        #expect(verification.isClean, "\(verification.damage)")
    }

    @Test func aTornWriteIsCutBackAndNeverRead() async throws {
        let directory = TemporaryDirectory("torn-write")
        defer { directory.remove() }
        let fileSystem = FaultInjectingFileSystem(seed: 5)
        let log = try await openLog(directory: directory.path, fileSystem: fileSystem)
        _ = try await log.append(ByteBuffer(string: "first"))
        fileSystem.tearNextWrite()
        await #expect(throws: LogError.self) { try await log.append(ByteBuffer(string: String(repeating: "torn", count: 500))) }
        #expect(try await log.append(ByteBuffer(string: "second")).seqs == 2...2)
        #expect(try await readAll(log).map(\.payload.text) == ["first", "second"])
        await log.close()
        #expect(try LogDirectory(path: directory.path).verify().isClean)
    }

    /// While appends fail, concurrent readers see exactly the acknowledged records.
    @Test func readersNeverSeeUnacknowledgedRecords() async throws {
        let directory = TemporaryDirectory("readers")
        defer { directory.remove() }
        let fileSystem = FaultInjectingFileSystem(seed: 9)
        let log = try await openLog(directory: directory.path, configuration: LogConfiguration(segmentBytes: 8192), fileSystem: fileSystem)
        let acknowledged = await withTaskGroup(of: [UInt64: String].self) { group in
            for appender in 0..<4 {
                group.addTask {
                    var acknowledged: [UInt64: String] = [:]
                    for i in 0..<150 {
                        if i % 37 == 11 { fileSystem.failNextSynchronize() }
                        let text = "a\(appender)-\(i)"
                        if let receipt = try? await log.append(ByteBuffer(string: text)) { acknowledged[receipt.firstSeq] = text }
                    }
                    return acknowledged
                }
            }
            group.addTask {
                // A reader running alongside: whatever it sees must end up acknowledged (checked below).
                var seen: [UInt64: String] = [:]
                for _ in 0..<50 {
                    for record in (try? await readAll(log)) ?? [] { seen[record.seq] = record.payload.text }
                    await Task.yield()
                }
                return seen.mapValues { "seen:" + $0 }
            }
            var acknowledged: [UInt64: String] = [:]
            var seen: [UInt64: String] = [:]
            for await result in group {
                for (seq, text) in result {
                    if text.hasPrefix("seen:") { seen[seq] = String(text.dropFirst(5)) } else { acknowledged[seq] = text }
                }
            }
            for (seq, text) in seen where acknowledged[seq] != text {
                Issue.record("a reader saw seq \(seq) = \(text), which was not acknowledged as such")
            }
            return acknowledged
        }
        let records = try await readAll(log)
        #expect(records.count == acknowledged.count)
        #expect(records.map(\.seq) == Array(1...UInt64(records.count)))
        for record in records { #expect(acknowledged[record.seq] == record.payload.text) }
        #expect(await log.status().segments.count > 1)
        await log.close()
    }

    @Test func tooManyPendingBytesAreRefusedAsOverloaded() async throws {
        let directory = TemporaryDirectory("overload")
        defer { directory.remove() }
        let log = try await openLog(directory: directory.path, configuration: LogConfiguration(maximumPendingBytes: 64 << 10))
        let payload = ByteBuffer(repeating: 1, count: 16 << 10)
        let outcomes = await withTaskGroup(of: LogError.Code?.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    do {
                        _ = try await log.append([payload, payload])
                        return nil
                    } catch let error as LogError {
                        return error.code
                    } catch {
                        return .closed
                    }
                }
            }
            var codes: [LogError.Code?] = []
            for await code in group { codes.append(code) }
            return codes
        }
        #expect(outcomes.contains { $0 == nil })
        #expect(outcomes.allSatisfy { $0 == nil || $0 == .overloaded })
        #expect(outcomes.contains { $0 == .overloaded })
        #expect(await log.lastSeq == UInt64(outcomes.filter { $0 == nil }.count * 2))
        await log.close()
    }
}
