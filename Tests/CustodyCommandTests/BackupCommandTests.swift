import CustodyClient
import CustodyCore
import CustodyLogTesting
import CustodyServerTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `custody backup` and `custody restore` as a person runs them, on a real server and real files:
/// a backup taken through the server while spans are being written (twice to one directory: the
/// second copies only what is new), restored into a new data directory that verifies and, once
/// started, answers as the original did up to the backup's head; and a backup killed with SIGKILL
/// leaves nothing a restore accepts.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BackupCommandTests {
    actor Written {
        var traces: Set<String> = []
        var stopped = false
        func add(_ trace: String) { traces.insert(trace) }
        func stop() { stopped = true }
    }

    @Test func aBackupUnderIngestRestoresToTheSameAnswers() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let directory = ServerFixture.directory()
        let backup = ServerFixture.directory()
        let restored = ServerFixture.directory()
        defer { for path in [directory, backup, restored] { removeDataDirectory(path) } }
        // Small segments, so that the log has sealed ones to keep between backups.
        let (server, base) = try await CustodyCommand.serve(directory, ["--segment-bytes", "65536"])
        defer {
            server.process.terminate()
            server.removeFiles()
        }
        let client = CustodyClient(baseURL: base)
        // Bad requests get the envelope's invalid_argument, naming the field.
        for (body, field) in [
            ("{}", "to"), (#"{"to": 5}"#, "to"), (#"{"to": "backups/today"}"#, "to"), (#"{"to": "/tmp/x", "include_key": "yes"}"#, "include_key"),
            (#"{"to": "\#(directory)/backup"}"#, "to"),
        ] {
            var request = URLRequest(url: URL(string: base + "/api/admin/backup")!)
            request.httpMethod = "POST"
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "content-type")
            let (data, response) = try await URLSession.shared.data(for: request)
            let error = (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["error"] as? [String: Any]
            #expect((response as? HTTPURLResponse)?.statusCode == 422, "\(body): \(String(decoding: data, as: UTF8.self))")
            #expect(error?["code"] as? String == "invalid_argument" && (error?["details"] as? [String: Any])?["field"] as? String == field)
        }
        let task = try await client.createTask(orderId: "o-backup", payload: .object(["kind": .string("backup")]))
        _ = try await client.updateTaskStatus(taskId: task.uuid, status: "in_progress")

        let written = Written()
        let writer = Task {
            var count = 0
            while await !written.stopped {
                count += 1
                let trace = "backup-\(count / 20)"
                let entries = (0..<25).map { index in
                    LogEntry(
                        traceId: trace,
                        spanId: "s\(count)-\(index)",
                        source: "data-factory",
                        operation: "data.load",
                        durationMs: Double(index),
                        details: .object(["pad": .string(String(repeating: "x", count: 200))])
                    )
                }
                if (try? await client.recordLog(entries)) != nil { await written.add(trace) }
            }
        }
        defer { writer.cancel() }
        // Some data, a first backup, more data, a second backup to the same directory: both
        // while the writer goes on.
        while await written.traces.count < 20 { try await Task.sleep(for: .milliseconds(50)) }
        let first = try await CustodyCommand.run(["backup", "--server", base, "--to", backup, "--json"])
        #expect(first.status == 0, "\(first.error)")
        let firstReport = try JSONSerialization.jsonObject(with: Data(first.output.utf8)) as? [String: Any] ?? [:]
        let firstHead = firstReport["head_seq"] as? Int ?? 0
        while await written.traces.count < 40 { try await Task.sleep(for: .milliseconds(50)) }
        let second = try await CustodyCommand.run(["backup", "--server", base, "--to", backup, "--json"])
        #expect(second.status == 0, "\(second.error)")
        let report = try JSONSerialization.jsonObject(with: Data(second.output.utf8)) as? [String: Any] ?? [:]
        let head = try #require(report["head_seq"] as? Int)
        #expect(head > firstHead, "the second backup's head \(head) is not past the first's \(firstHead)")
        #expect((report["files_kept"] as? Int ?? 0) > 0, "the second backup copied every file again: \(report)")
        // The projections are copied whole each time, and counted with the log's files.
        let projectionsBytes = try #require(
            (try FileManager.default.attributesOfItem(atPath: backup + "/projections.sqlite")[.size] as? NSNumber)?.intValue
        )
        #expect((report["bytes_copied"] as? Int ?? 0) > projectionsBytes, "\(report), projections \(projectionsBytes) bytes")
        #expect((report["files_copied"] as? Int ?? 0) >= 1)
        #expect(!FileManager.default.fileExists(atPath: backup + "/signing-key"), "the key was copied without --include-key")
        await written.stop()
        await writer.value

        // Restored: it verifies, and a server on it answers as the original did up to the head.
        let restore = try await CustodyCommand.run(["restore", "--from", backup, "--data-dir", restored])
        #expect(restore.status == 0 && restore.output.contains("head seq \(head)"), "\(restore.output) \(restore.error)")
        let again = try await CustodyCommand.run(["restore", "--from", backup, "--data-dir", restored])
        #expect(again.status != 0 && again.error.contains("not empty"), "\(again.error)")
        let verified = try await CustodyCommand.run(["log", "verify", "--data-dir", restored])
        #expect(verified.status == 0, "\(verified.output) \(verified.error)")
        let (copy, copyBase) = try await CustodyCommand.serve(restored)
        defer {
            copy.process.terminate()
            copy.removeFiles()
        }
        let copyClient = CustodyClient(baseURL: copyBase)
        let original = try await client.getTask(task.uuid, asOf: String(head))
        let fromCopy = try await copyClient.getTask(task.uuid)
        #expect(fromCopy.status == original.status && fromCopy.lastSeq == original.lastSeq)
        var compared = 0
        for trace in await written.traces.sorted() {
            let mine = try await client.getTrace(trace).spans.filter { $0.source == "data-factory" && $0.seq <= UInt64(head) }
            guard !mine.isEmpty else { continue }
            let theirs = try await copyClient.getTrace(trace).spans.filter { $0.source == "data-factory" }
            #expect(Set(theirs.map(\.seq)) == Set(mine.map(\.seq)), "trace \(trace) differs in the restored copy")
            #expect(Set(theirs.compactMap(\.spanId)) == Set(mine.compactMap(\.spanId)))
            compared += 1
        }
        #expect(compared >= 20, "only \(compared) traces compared")
    }

    @Test func aBackupKilledMidwayLeavesNothingARestoreAccepts() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CustodyExecutable.path), "build the custody executable first")
        let directory = ServerFixture.directory()
        let backup = ServerFixture.directory()
        let restored = ServerFixture.directory()
        defer { for path in [directory, backup, restored] { removeDataDirectory(path) } }
        // A stopped data directory of some size.
        let filled = try await CustodyCommand.run([
            "bench", "ingest", "--in-process", "--data-dir", directory, "--events", "60000", "--fsync", "never",
        ])
        #expect(filled.status == 0, "\(filled.error)")
        // A complete backup first, then a second one into the same directory, killed as soon as
        // it has begun (its first step removes the old manifest).
        let complete = try await CustodyCommand.run(["backup", "--data-dir", directory, "--to", backup])
        #expect(complete.status == 0, "\(complete.error)")
        let manifest = backup + "/" + BackupManifest.fileName
        #expect(FileManager.default.fileExists(atPath: manifest))
        let command = try CustodyCommand.start(["backup", "--data-dir", directory, "--to", backup])
        defer { command.removeFiles() }
        let deadline = ContinuousClock.now + .seconds(60)
        while FileManager.default.fileExists(atPath: manifest) && command.process.isRunning && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(1))
        }
        kill(command.process.processIdentifier, SIGKILL)
        try await ChildProcess.exit(command.process)
        try #require(command.process.terminationReason == .uncaughtSignal, "the backup ended before it could be killed: \(command.output)")
        #expect(!FileManager.default.fileExists(atPath: manifest))
        let refused = try await CustodyCommand.run(["restore", "--from", backup, "--data-dir", restored])
        #expect(refused.status != 0 && refused.error.contains("not a complete backup"), "\(refused.output) \(refused.error)")
        #expect(!FileManager.default.fileExists(atPath: restored + "/" + BackupManifest.projectionsFileName))
    }
}
