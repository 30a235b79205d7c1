import ArgumentParser
import CustodyClient
import CustodyCore
import CustodyLog
import CustodyLogTesting
import Foundation
import Logging
import NIOCore

struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Look at the segment log directly: verify, inspect, dump; save a signed checkpoint, rotate the signing key.",
        subcommands: [Verify.self, Inspect.self, Dump.self, Checkpoint.self, RotateKey.self, Stress.self]
    )

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Check every batch's CRC-32C, the index files, the hash chain and every checkpoint's signature; name any damage (segment, offset, seq range).",
            discussion: """
                Exits 0 only when the log is clean. The hash chain is recomputed over every event and compared \
                with the value each batch stores; every log.checkpoint's Ed25519 signature is checked, and the \
                keys that signed them must follow each other by announced rotations. --receipt SEQ:HEX \
                (repeatable) checks a write's receipt; --checkpoint FILE checks a checkpoint saved earlier \
                (custody log checkpoint --save FILE): a log cut back or rewritten since fails, however \
                consistent its CRCs and stored chain values are. The server's key file (--signing-key, \
                default DATA_DIR.signing-key when it exists) must be among the keys that signed. With --repair, damage is then repaired the way the \
                server's --repair does it: each damaged range is moved into a side file next to its \
                segment, the lost seqs are recorded in quarantine.json and printed, and the log is \
                checked again. Do not repair the directory of a running server.
                """
        )

        @OptionGroup var data: DataDirectoryOptions
        @Flag(help: "Print the report as JSON.") var json = false
        @Flag(help: "Quarantine damaged ranges (a torn tail is cut), then verify again.") var repair = false
        @Option(name: .customLong("receipt"), help: "A write's receipt, SEQ:HEX (repeatable).") var receipts: [String] = []
        @Option(help: "A checkpoint saved earlier (the JSON of GET /api/log/checkpoint's data).") var checkpoint: String?
        @Option(name: .customLong("signing-key"), help: "The server's key file (default DATA_DIR.signing-key when it exists).")
        var signingKey: String?

        func run() async throws {
            let directory = data.path
            let receipts = try withCleanErrors { try self.receipts.map { text throws(CoreError) in try Receipt(parsing: text) } }
            let saved = try checkpoint.map { path in try withCleanErrors { try Self.loadCheckpoint(path) } }
            let keyPath = signingKey ?? SigningKey.defaultPath(forDataDirectory: directory)
            var trustedKey: [UInt8]?
            if signingKey != nil || FileManager.default.fileExists(atPath: keyPath) {
                trustedKey = try withCleanErrors { try SigningKey.load(from: keyPath).publicKey }
            }
            // What the projections applied was acknowledged: the log must still reach it.
            func verify() throws -> LogVerification.Report {
                try withCleanErrors {
                    let applied = try SQLiteProjectionStore.appliedSeq(ofDatabaseAt: ProjectionPaths.database(in: directory))
                    let mark = applied > 0 ? AcknowledgedMark(seq: applied, witness: "the projections' checkpoint") : nil
                    return try LogVerification.verify(
                        directory: directory,
                        acknowledged: mark,
                        receipts: receipts,
                        checkpoint: saved,
                        trustedKey: trustedKey
                    )
                }
            }
            var report = try verify()
            if repair && !report.isClean {
                for damage in report.log.damage { printError("found: \(damage)") }
                // The server's repair: the loss recorded in the log, the projections rebuilt.
                var configuration = CoreRuntime.Configuration()
                configuration.damagePolicy = .quarantine
                let recovery = try await awaitingCleanErrors {
                    let runtime = try await CoreRuntime.open(
                        directory: directory,
                        configuration: configuration,
                        logger: Logger(label: "custody.repair")
                    )
                    await runtime.close()
                    return runtime.log.recoveryReport
                }
                for cut in recovery.tailCuts {
                    printError("cut a torn tail: \(cut.segment) at byte \(cut.offset), \(cut.bytesCut) bytes (\(cut.defect))")
                }
                for entry in recovery.quarantined {
                    printError(
                        "quarantined \(entry.segment) bytes \(entry.offset)..<\(entry.offset + entry.length) into \(entry.sideFile ?? "-"): lost seqs \(entry.firstLostSeq)–\(entry.lastLostSeq) (\(entry.defect)); recorded as a loss"
                    )
                }
                report = try verify()
            }
            let verification = report.log
            if json {
                print(try encodeJSON(report))
            } else {
                print(
                    "checked \(verification.segments) segments, \(verification.batches) batches, \(verification.records) records, \(formatBytes(verification.bytes))"
                )
                if let head = verification.chainHead {
                    print(
                        "hash chain: \(verification.chainedRecords) records from seq \(verification.chainStartSeq ?? 1), head seq \(head.seq) chain \(head.chain.hex)"
                    )
                }
                if let trustedKey { print("server key: \(LogCheckpoint.keyID(of: trustedKey)) (\(keyPath))") }
                for check in verification.claims where !check.claim.source.hasPrefix("log.checkpoint") {
                    print("\(check.holds ? "holds" : "FAILS"): \(check.claim.source): \(check.detail)")
                }
                for note in verification.notes { print("note: \(note)") }
                for damage in verification.damage { print("DAMAGE: \(damage)") }
                print(verification.isClean ? "clean" : "\(verification.damage.count) damaged range(s)")
            }
            if !verification.isClean { throw ExitCode(1) }
        }

        /// A checkpoint file as `custody log checkpoint --save` writes it.
        static func loadCheckpoint(_ path: String) throws -> LogCheckpoint {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CoreError(.invalidArgument, "cannot read the checkpoint file \(path)")
            }
            guard let json = try? JSONDecoder().decode(JSONValue.self, from: data) else {
                throw CoreError(.invalidArgument, "\(path) is not JSON")
            }
            do {
                return try LogCheckpoint(json: json)
            } catch {
                throw CoreError(.invalidArgument, "\(path) is not a checkpoint: \(error.field ?? "checkpoint") \(error.message)")
            }
        }
    }

    struct Checkpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch the server's newest signed checkpoint; with --save, keep it in a file for `log verify --checkpoint`.",
            discussion: """
                The file holds the data object of GET /api/log/checkpoint: seq, chain, at, key_id, public_key, \
                signature. Keep it somewhere the server cannot write: `custody log verify --checkpoint FILE` \
                later proves the log still holds everything up to that seq, unchanged.
                """
        )

        @Option(help: "The server (default $CUSTODY_SERVER, else http://127.0.0.1:8787).") var server: String?
        @Option(help: "Write the checkpoint to this file.") var save: String?

        func run() async throws {
            let client = CustodyClient.command(server: server)
            let answer = try await awaitingCleanErrors { try await client.getCheckpoint() }
            let text = try encodeJSON(answer)
            if let save {
                guard FileManager.default.createFile(atPath: save, contents: Data((text + "\n").utf8)) else {
                    printError("custody: cannot write \(save)")
                    throw ExitCode(1)
                }
                print("saved the checkpoint of seq \(answer.seq) (chain \(answer.chain), key \(answer.keyId)) to \(save)")
            } else {
                print(text)
            }
        }
    }

    struct RotateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Rotate the server's checkpoint signing key (admin role).",
            discussion: """
                The server writes a new key file in the old one's place (the old one is kept as \
                FILE.retired-KEYID) and appends a checkpoint signed with the old key that announces the new one; \
                later checkpoints are signed with the new key.
                """
        )

        @Option(help: "The server (default $CUSTODY_SERVER, else http://127.0.0.1:8787).") var server: String?

        func run() async throws {
            let client = CustodyClient.command(server: server)
            let answer = try await awaitingCleanErrors { try await client.rotateSigningKey() }
            print("rotated the signing key: checkpoint of seq \(answer.seq) signed by \(answer.keyId) announces \(answer.nextKeyId ?? "?")")
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Segments, seq ranges, sizes, compression ratio and time range."
        )

        @OptionGroup var data: DataDirectoryOptions
        @Flag(help: "Print the report as JSON.") var json = false

        func run() throws {
            let inspection = try withCleanErrors { try LogDirectory(path: data.path).inspect() }
            if json {
                print(try encodeJSON(inspection))
                return
            }
            print("data directory: \(data.path)")
            if let first = inspection.segments.first(where: { $0.records > 0 }) {
                let since = first.firstTimestamp.map { " (\(formatTimestamp($0)))" } ?? ""
                let deleted = inspection.retention.map { " — retention deleted seqs 1–\($0.firstSeq - 1)" } ?? ""
                print("retained: seq \(first.baseSeq) on\(since)\(deleted)")
            }
            print("segment                      seqs                         records     bytes  ratio  index  time range")
            for segment in inspection.segments {
                let seqs = segment.records == 0 ? "(empty)" : "\(segment.baseSeq)–\(segment.endSeq - 1)"
                let ratio = segment.bytes > 0 ? String(format: "%.2f×", Double(segment.uncompressedBytes) / Double(segment.bytes)) : "-"
                let times = [segment.firstTimestamp, segment.lastTimestamp].compactMap { $0.map(formatTimestamp) }.joined(separator: " → ")
                var line = "\(segment.name)  \(seqs.padding(toLength: 27, withPad: " ", startingAt: 0))  "
                line += "\(String(segment.records).leftPadded(9))  \(formatBytes(segment.bytes).leftPadded(8))  \(ratio.leftPadded(6))  "
                line += "\((segment.hasIndexFiles ? "yes" : "no").leftPadded(5))  \(times)"
                if segment.trailingBytes > 0 { line += "  (+\(segment.trailingBytes) bytes not a whole batch)" }
                print(line)
            }
            print(
                "total: \(inspection.segments.count) segments, \(inspection.records) records, \(formatBytes(inspection.bytes)) on disk, \(formatBytes(inspection.uncompressedBytes)) uncompressed, ratio \(String(format: "%.2f", inspection.compressionRatio))×"
            )
            for entry in inspection.quarantined {
                print(
                    "quarantined: \(entry.segment) at byte \(entry.offset) (\(entry.length) bytes, seqs \(entry.firstLostSeq)–\(entry.lastLostSeq)): \(entry.defect)"
                )
            }
        }
    }

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print events as JSON lines: seq, ingested_at, type and body.",
            discussion: """
                A record that is not an event (written by something other than Custody's core) is printed \
                as {"seq", "ingested_at", "record"}, with the record as JSON when it is JSON, else base64.
                """
        )

        @OptionGroup var data: DataDirectoryOptions
        @Option(help: "First seq.") var from: UInt64 = 1
        @Option(help: "Last seq.") var to: UInt64 = .max
        @Option(help: "Only events of this trace (a span's trace_id, a replay's new trace).") var trace: String?
        @Option(help: "Only events of this type (span, task.created, task.status_changed, …).") var type: String?

        func validate() throws {
            guard from <= to else { throw ValidationError("--from must not be after --to") }
            if let type, EventType(name: type) == nil {
                throw ValidationError("--type takes one of: \(EventType.allCases.map(\.name).joined(separator: ", "))")
            }
        }

        func run() throws {
            var output = FileHandleOutput()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            try withCleanErrors {
                try LogDirectory(path: data.path).forEachRecord(in: from...to) { record in
                    let line: JSONValue
                    if let event = try? EventCodec.decode(record) {
                        if let type, event.type.name != type { return true }
                        if let trace, event.traceId != trace { return true }
                        line = event.jsonValue
                    } else {
                        if type != nil || trace != nil { return true }
                        let bytes = Data(record.payload.readableBytesView)
                        let parsed = try? JSONDecoder().decode(JSONValue.self, from: bytes)
                        line = .object([
                            "seq": .integer(Int64(bitPattern: record.seq)), "ingested_at": .string(RFC3339.format(record.timestamp)),
                            "record": parsed ?? .object(["base64": .string(bytes.base64EncodedString())]),
                        ])
                    }
                    output.write(try encoder.encode(line))
                    output.write(Data("\n".utf8))
                    return true
                }
            }
            output.flush()
        }
    }

    /// Appends in a loop and prints "ack FIRST LAST" after each acknowledged append, until killed:
    /// the child process of the kill -9 durability test, and a manual check of the same.
    struct Stress: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append until killed, printing each acknowledged seq range (for crash tests).",
            shouldDisplay: false
        )

        @OptionGroup var data: DataDirectoryOptions
        @Option(help: "Concurrent appenders.") var appenders = 8
        @Option(help: "Records per append.") var batch = 16
        @Option(help: "Bytes per record.") var recordBytes = 200
        @Option(help: "fsync policy: always, interval=MS or never.") var fsync = "always"
        @Option(help: "Segment size in bytes (small, to cross segment rolls).") var segmentBytes: Int64 = 256 << 10
        @Flag(help: "Append span events and run the projections alongside (to kill both at once).") var project = false

        func run() async throws {
            guard let policy = FsyncPolicy(fsync) else { throw ValidationError("--fsync takes always, interval=MS or never") }
            let log = try await SegmentLog.open(
                directory: data.path,
                configuration: LogConfiguration(fsync: policy, segmentBytes: segmentBytes)
            )
            let output = AcknowledgementPrinter()
            let recordBytes = recordBytes
            let project = project
            let batch = batch
            try await withThrowingTaskGroup(of: Void.self) { group in
                if project {
                    let store = try SQLiteProjectionStore(path: ProjectionPaths.database(in: data.path))
                    let projector = Projector(log: log, store: store, batchSize: 500)
                    group.addTask { try await projector.run() }
                }
                for appender in 0..<appenders {
                    group.addTask {
                        var random = SplitMix64(seed: UInt64(appender) &+ 1)
                        var n = 0
                        while true {
                            var payloads: [ByteBuffer] = []
                            for _ in 0..<batch {
                                if project {
                                    let span = Span(
                                        traceId: "a\(appender)-\(n / 8)",
                                        spanId: "s\(n)",
                                        source: ["agent-factory", "ui-factory"][n % 2],
                                        stage: n % 13 == 0 ? "error" : "processing",
                                        operation: "op\(n % 5)",
                                        durationMs: Double(n % 100),
                                        timestamp: SegmentLog.now(),
                                        details: JSONValue.object(["appender": .integer(Int64(appender))]).jsonText
                                    )
                                    payloads.append(EventCodec.encode(.span(span)))
                                } else {
                                    var payload = SamplePayloads.span(n, size: recordBytes, random: &random)
                                    payload.writeString(" a\(appender)")
                                    payloads.append(payload)
                                }
                                n += 1
                            }
                            let receipt = try await log.append(payloads)
                            await output.acknowledge(receipt)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}

/// Prints acknowledgements one whole line at a time, so a reader that is killed mid-way never
/// sees half a line.
actor AcknowledgementPrinter {
    func acknowledge(_ receipt: AppendReceipt) {
        writeAll(STDOUT_FILENO, "ack \(receipt.firstSeq) \(receipt.lastSeq)\n")
    }
}
