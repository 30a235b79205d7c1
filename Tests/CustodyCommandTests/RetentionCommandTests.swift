import CustodyClient
import CustodyCore
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import GRDB
import Testing

/// Retention as a person runs it (docs/operations.md, "Retention"): `custody serve` with a byte
/// limit on small segments while spans come in, restarted cleanly and with SIGKILL, and killed
/// at each step of a pass. After it: the disk stays under the limit plus a segment, the state
/// from before the retained range reads back unchanged, the state projections equal a rebuild
/// from the snapshot and the log, reads into the deleted range answer 410, and the log verifies.
@Suite(.serialized, .timeLimit(.minutes(8))) struct RetentionCommandTests {
    static let segmentBytes: Int64 = 65_536
    static let maxBytes: Int64 = 400_000

    /// The bytes of the data directory's segment files.
    static func segmentBytes(in directory: String) -> Int64 {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".log") && $0.count == 24 }.reduce(0) { total, name in
            total + ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)[.size] as? NSNumber)?.int64Value ?? 0)
        }
    }

    /// Posts `count` requests of spans (25 each, about 7 KB) to traces named after `prefix`.
    static func write(_ client: CustodyClient, requests count: Int, prefix: String, pause: Duration = .zero) async throws {
        for request in 0..<count {
            let entries = (0..<25).map { index in
                LogEntry(
                    traceId: "\(prefix)-\(request / 4)",
                    spanId: "\(prefix)-\(request)-\(index)",
                    source: "data-factory",
                    operation: "data.load",
                    durationMs: Double(index),
                    // Random, so that the log's compression leaves it about its size.
                    details: .object(["pad": .string((0..<6).map { _ in UUID().uuidString }.joined())])
                )
            }
            _ = try await client.recordLog(entries)
            if pause > .zero { try await Task.sleep(for: pause) }
        }
    }

    /// Returns once `condition` holds, or after `seconds` (the caller then asserts it).
    static func waitUntil(seconds: Int = 30, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
    }

    /// `retention` of `/api/admin/stats`.
    static func retention(_ client: CustodyClient) async throws -> JSON {
        try await client.adminStats()["retention"] ?? .null
    }

    /// Waits until retention keeps the log from after `seq` on; returns the first seq kept.
    @discardableResult
    static func waitForRetention(_ client: CustodyClient, past seq: UInt64, seconds: Int = 60) async throws -> UInt64 {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let first = try await retention(client)["first_seq"]?.numberValue, UInt64(first) > seq { return UInt64(first) }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CustodyCommand.CommandFailed(message: "retention did not delete past seq \(seq) within \(seconds) s")
    }

    static func serveArguments(interval: String = "0.2") -> [String] {
        ["--segment-bytes", String(segmentBytes), "--retention-max-bytes", String(maxBytes), "--retention-interval", interval]
    }

    /// The state tables, the spans and the retired traces of `projections.sqlite` in `directory`,
    /// row by row.
    static func stateRows(_ directory: String) throws -> [String: [String]] {
        let queue = try DatabaseQueue(path: directory + "/projections.sqlite")
        defer { try? queue.close() }
        return try queue.read { db in
            var tables: [String: [String]] = [:]
            for table in SQLiteProjectionStore.stateTables {
                tables[table] = try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY 1").map {
                    $0.databaseValues.map(\.description).joined(separator: "|")
                }
            }
            // The spans, without the trace numbers, which a rebuild gives in order of first
            // appearance in what is left.
            tables["operation_logs"] = try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, trace_id, span_id, parent_span_id, source, stage, operation, task_uuid, duration_ms, timestamp, ingested_at, is_error
                    FROM operation_logs ORDER BY seq
                    """
            ).map { $0.databaseValues.map(\.description).joined(separator: "|") }
            return tables
        }
    }

    /// `custody log verify` passes, and `custody rebuild` of a copy (the newest snapshot and the
    /// log after it) gives exactly the state projections the server kept incrementally.
    static func expectVerifiesAndRebuildsTheSame(_ directory: String) async throws {
        let verified = try await CustodyCommand.run(["log", "verify", "--data-dir", directory])
        #expect(verified.status == 0, "log verify: \(verified.output) \(verified.error)")
        #expect(verified.output.contains("retention deleted seqs 1–"), "\(verified.output)")
        let copy = ServerFixture.directory()
        defer { removeDataDirectory(copy) }
        try FileManager.default.copyItem(atPath: directory, toPath: copy)
        let rebuilt = try await CustodyCommand.run(["rebuild", "--data-dir", copy])
        #expect(rebuilt.status == 0, "rebuild: \(rebuilt.error)")
        let incremental = try expectSameRows(kept: directory, rebuilt: copy)
        #expect((incremental["tasks"]?.count ?? 0) >= 1 && (incremental["retired_traces"]?.count ?? 0) > 0)
    }

    /// Expects the projections in `kept` (kept incrementally) and `rebuilt` to hold the same rows
    /// (``stateRows(_:)``); returns those of `kept`.
    @discardableResult
    static func expectSameRows(kept: String, rebuilt: String) throws -> [String: [String]] {
        let incremental = try stateRows(kept)
        let fromSnapshot = try stateRows(rebuilt)
        for table in incremental.keys.sorted() {
            let kept = incremental[table] ?? []
            let rebuilt = fromSnapshot[table] ?? []
            let firstDifference = zip(kept, rebuilt).first { $0 != $1 }.map { "kept \($0.0), rebuilt \($0.1)" } ?? "-"
            #expect(kept == rebuilt, "\(table): \(kept.count) rows kept, \(rebuilt.count) rebuilt; first difference: \(firstDifference)")
        }
        return incremental
    }

    @Test func retentionDuringIngestAndRestartsKeepsStateAndAnswers410() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let directory = ServerFixture.directory()
        defer { removeDataDirectory(directory) }
        var (server, base) = try await CustodyCommand.serve(directory, Self.serveArguments())
        defer {
            server.process.terminate()
            server.removeFiles()
        }
        var client = CustodyClient(baseURL: base)
        // State from before the range retention will delete: two tasks (one changed), a
        // follow-up, a report; a trace wholly early and one that goes on later.
        let changed = try await client.createTask(orderId: "o-retained", payload: .object(["n": .number(1)]))
        let moved = try await client.updateTaskStatus(taskId: changed.uuid, status: "in_progress")
        let untouched = try await client.createTask(orderId: "o-retained", payload: .object(["n": .number(2)]))
        _ = try await client.submitOpsFollowup(orderId: "o-retained", type: "qa", note: "kept", impact: "low")
        _ = try await client.finalizeDeliveryReport(orderId: "o-retained")
        _ = try await client.recordLog(LogEntry(traceId: "early-whole", spanId: "e1", source: "agent-factory", operation: "plan"))
        let straddle = try await client.recordLog([LogEntry(traceId: "early-straddle", spanId: "s1", source: "agent-factory", operation: "plan")])
        let before = try await client.getTask(changed.uuid)
        let beforeUntouched = try await client.getTask(untouched.uuid)
        let early = max(straddle.lastSeq, before.lastSeq)

        // Ingest while retention runs; the disk is sampled throughout.
        var largest: Int64 = 0
        for round in 0..<3 {
            try await Self.write(client, requests: 40, prefix: "r\(round)", pause: .milliseconds(5))
            largest = max(largest, Self.segmentBytes(in: directory))
            if round == 0 {
                // A clean restart.
                try await server.stop()
                server.removeFiles()
                (server, base) = try await CustodyCommand.serve(directory, Self.serveArguments())
                client = CustodyClient(baseURL: base)
            } else if round == 1 {
                // SIGKILL while spans come in.
                let writing = client
                let writer = Task { try await Self.write(writing, requests: 1_000, prefix: "killed", pause: .milliseconds(2)) }
                try await Task.sleep(for: .milliseconds(300))
                kill(server.process.processIdentifier, SIGKILL)
                try await ChildProcess.exit(server.process)
                _ = await writer.result
                server.removeFiles()
                (server, base) = try await CustodyCommand.serve(directory, Self.serveArguments())
                client = CustodyClient(baseURL: base)
            }
        }
        _ = try await client.recordLog([LogEntry(traceId: "early-straddle", spanId: "s2", source: "agent-factory", operation: "finish")])
        try await Self.waitForRetention(client, past: early)
        // Quiet: one more pass has run since the last write.
        let head = try await client.adminStats()["log"]?["last_seq"]?.numberValue ?? 0
        try await Self.waitUntil { Self.segmentBytes(in: directory) <= Self.maxBytes + Self.segmentBytes }
        let quiet = Self.segmentBytes(in: directory)
        #expect(quiet <= Self.maxBytes + Self.segmentBytes, "\(quiet) bytes of segments after retention (limit \(Self.maxBytes) + one segment)")
        // A clean restart with passes an hour apart: its first pass runs at once, then the log
        // holds still while it is read.
        try await server.stop()
        server.removeFiles()
        (server, base) = try await CustodyCommand.serve(directory, Self.serveArguments(interval: "3600"))
        client = CustodyClient(baseURL: base)
        while try await Self.retention(client)["last_pass"] == .null { try await Task.sleep(for: .milliseconds(20)) }
        let first = UInt64(try await Self.retention(client)["first_seq"]?.numberValue ?? 0)
        #expect(first > early)
        // While writing, a pass runs every 0.2 s: at most what came in since the last pass more.
        #expect(largest <= Self.maxBytes + 2 * Self.segmentBytes, "\(largest) bytes of segments during ingest")
        #expect(head > Double(first))

        // The state from before the retained range reads back unchanged.
        let after = try await client.getTask(changed.uuid)
        #expect(after.status == "in_progress" && after.status == moved.status && after.lastSeq == before.lastSeq && after.payload == before.payload)
        #expect(try await client.getTask(untouched.uuid) == beforeUntouched)
        #expect(try await client.fetchFollowups(orderId: "o-retained").map(\.note) == ["kept"])
        // Time travel reaches back to the snapshot, not before.
        let asOfHead = try await client.getTask(changed.uuid, asOf: String(Int(head)))
        #expect(asOfHead.status == "in_progress" && asOfHead.lastSeq == before.lastSeq)
        let tooEarly = await #expect(throws: CustodyClientError.self) { _ = try await client.getTask(changed.uuid, asOf: "1") }
        #expect(tooEarly?.status == 410 && tooEarly?.code == "beyond_retention", "\(String(describing: tooEarly))")
        let snapshotPoint = try await client.getTask(changed.uuid, asOf: String(first - 1))
        #expect(snapshotPoint.status == "in_progress")
        // Traces: wholly deleted → 410 (an unknown one is still 404); partly → what is left, said so.
        let gone = await #expect(throws: CustodyClientError.self) { _ = try await client.getTrace("early-whole") }
        #expect(gone?.status == 410 && gone?.code == "beyond_retention", "\(String(describing: gone))")
        let unknown = await #expect(throws: CustodyClientError.self) { _ = try await client.getTrace("never-sent") }
        #expect(unknown?.status == 404)
        let partial = try await client.getTrace("early-straddle")
        #expect(partial.spans.map(\.spanId) == ["s2"] && partial.retention?.partial == true && partial.retention?.firstSeq == first)
        let replay = await #expect(throws: CustodyClientError.self) { _ = try await client.replayTrace("early-whole") }
        #expect(replay?.status == 410, "\(String(describing: replay))")
        // Proofs: of the first event kept (its chain starts from the recorded value), and none of
        // a deleted one.
        _ = try await client.getProof(seq: first)
        let deletedProof = await #expect(throws: CustodyClientError.self) { _ = try await client.getProof(seq: 1) }
        #expect(deletedProof?.status == 410, "\(String(describing: deletedProof))")
        let stats = try await Self.retention(client)
        #expect((stats["deleted_events"]?.numberValue ?? 0) >= Double(first - 1) && stats["first_at"]?.stringValue != nil)

        try await server.stop()
        try await Self.expectVerifiesAndRebuildsTheSame(directory)
        let inspected = try await CustodyCommand.run(["log", "inspect", "--data-dir", directory])
        #expect(inspected.output.contains("retained: seq \(first) on"), "\(inspected.output)")
    }

    /// A pass killed with SIGKILL after its snapshot, after its record, and between two segment
    /// deletions: the directory verifies as it is, and the next server finishes the pass.
    @Test(arguments: ["after-snapshot", "after-record", "between-deletions"])
    func aPassKilledAtEachStepIsFinishedByTheNextStart(_ point: String) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let directory = ServerFixture.directory()
        defer { removeDataDirectory(directory) }
        // A log of many sealed segments (over twice the retention limit, compressed), written
        // without retention.
        var (server, base) = try await CustodyCommand.serve(directory, ["--segment-bytes", String(Self.segmentBytes)])
        var client = CustodyClient(baseURL: base)
        let task = try await client.createTask(orderId: "o-crash", payload: .object(["point": .string(point)]))
        _ = try await client.updateTaskStatus(taskId: task.uuid, status: "blocked")
        try await Self.write(client, requests: 220, prefix: "fill")
        try await server.stop()
        server.removeFiles()
        #expect(Self.segmentBytes(in: directory) > 2 * Self.maxBytes)

        // Retention on, stopping at `point`: killed there.
        (server, base) = try await CustodyCommand.serve(directory, Self.serveArguments(), environment: ["CUSTODY_RETENTION_STOP_AT": point])
        let stopped = try await ChildProcess.text(of: server.errorPath, containing: "retention stopped at \(point)", seconds: 60)
        try #require(stopped.contains("retention stopped at \(point)"), "the pass did not reach \(point): \(stopped.suffix(2000))")
        kill(server.process.processIdentifier, SIGKILL)
        try await ChildProcess.exit(server.process)
        server.removeFiles()
        let verified = try await CustodyCommand.run(["log", "verify", "--data-dir", directory])
        #expect(verified.status == 0, "log verify after a kill \(point): \(verified.output) \(verified.error)")

        // The next start finishes the pass.
        (server, base) = try await CustodyCommand.serve(directory, Self.serveArguments())
        defer {
            server.process.terminate()
            server.removeFiles()
        }
        client = CustodyClient(baseURL: base)
        try await Self.waitForRetention(client, past: task.lastSeq)
        try await Self.waitUntil { Self.segmentBytes(in: directory) <= Self.maxBytes + Self.segmentBytes }
        #expect(Self.segmentBytes(in: directory) <= Self.maxBytes + Self.segmentBytes)
        let kept = try await client.getTask(task.uuid)
        #expect(kept.status == "blocked" && kept.orderId == "o-crash")
        let snapshots = try FileManager.default.contentsOfDirectory(atPath: directory + "/snapshots")
        #expect(snapshots.count == 1, "snapshots left: \(snapshots)")
        try await server.stop()
        try await Self.expectVerifiesAndRebuildsTheSame(directory)
    }

    /// `--retention-max-age`: every sealed segment whose newest record is older than the limit
    /// goes, down to the last one holding records; a bad value is refused with the flag named.
    @Test func maxAgeDeletesWhatIsOlderAndBadLimitsAreRefused() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let directory = ServerFixture.directory()
        defer { removeDataDirectory(directory) }
        for (flag, value) in [("--retention-max-bytes", "12XB"), ("--retention-max-age", "7x"), ("--retention-interval", "0")] {
            let refused = try await CustodyCommand.run(["serve", "--data-dir", directory, "--port", "0", flag, value])
            #expect(
                refused.status != 0 && refused.error.contains(flag.dropFirst(2).split(separator: "-").last!),
                "\(flag) \(value): \(refused.error)"
            )
        }
        var (server, base) = try await CustodyCommand.serve(directory, ["--segment-bytes", String(Self.segmentBytes)])
        var client = CustodyClient(baseURL: base)
        let task = try await client.createTask(orderId: "o-age", payload: .object([:]))
        try await Self.write(client, requests: 100, prefix: "aged")
        try await server.stop()
        server.removeFiles()
        let segments = { (try? FileManager.default.contentsOfDirectory(atPath: directory))?.filter { $0.hasSuffix(".log") }.count ?? 0 }
        #expect(segments() > 5)

        (server, base) = try await CustodyCommand.serve(
            directory,
            ["--segment-bytes", String(Self.segmentBytes), "--retention-max-age", "1", "--retention-interval", "0.2"]
        )
        defer {
            server.process.terminate()
            server.removeFiles()
        }
        client = CustodyClient(baseURL: base)
        try await Self.waitForRetention(client, past: task.lastSeq)
        // Down to the last segment holding records and the active one.
        try await Self.waitUntil { segments() <= 2 }
        #expect(segments() <= 2)
        #expect(try await client.getTask(task.uuid).orderId == "o-age")
        try await server.stop()
        try await Self.expectVerifiesAndRebuildsTheSame(directory)

        // A backup of the retained directory restores (its chain checked from the recorded
        // start) and serves the state from the snapshot.
        let backup = ServerFixture.directory()
        let restored = ServerFixture.directory()
        defer { for path in [backup, restored] { removeDataDirectory(path) } }
        let copied = try await CustodyCommand.run(["backup", "--data-dir", directory, "--to", backup])
        #expect(copied.status == 0, "\(copied.error)")
        #expect(FileManager.default.fileExists(atPath: backup + "/retention.json"))
        let restore = try await CustodyCommand.run(["restore", "--from", backup, "--data-dir", restored])
        #expect(restore.status == 0, "\(restore.output) \(restore.error)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: restored + "/snapshots"))?.count == 1)
        let (copy, copyBase) = try await CustodyCommand.serve(restored)
        defer {
            copy.process.terminate()
            copy.removeFiles()
        }
        let copyClient = CustodyClient(baseURL: copyBase)
        #expect(try await copyClient.getTask(task.uuid).orderId == "o-age")
        let early = await #expect(throws: CustodyClientError.self) { _ = try await copyClient.getTask(task.uuid, asOf: String(task.lastSeq)) }
        #expect(early?.status == 410, "\(String(describing: early))")
    }
}
