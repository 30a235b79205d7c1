import ArgumentParser
import CustodyCore
import CustodyJetStream
import CustodyLog
import CustodyLogTesting
import Foundation
import GRDB
import Logging
import NIOCore
import Synchronization

extension BenchCommand {
    /// `custody bench compare` (`make bench-compare`): Custody beside what a user would pick
    /// instead for each of its jobs, in one run on one machine, each as durable as the other —
    /// docs/benchmarks.md "Side by side".
    ///
    /// - Durable appends of 256 B span events: Custody's segment log (fsync `always`), the seed
    ///   design's one SQLite INSERT per event (WAL, `synchronous=FULL`), and a NATS JetStream
    ///   stream (Debian `nats-server`, R1, file storage) with one message per event, published
    ///   pipelined. Debian's nats-server (2.9) cannot fsync every write (`sync_interval: always`
    ///   came in 2.10): it acknowledges a message once written to its file and fsyncs on a timer,
    ///   so it is set beside Custody with fsync `always` (more durable) and `never` (as durable).
    /// - Projections: Custody's projector reading those events back from its log into SQLite and
    ///   into PostgreSQL, beside PostgreSQL `COPY` of the same spans as rows of one indexed table.
    struct Compare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Custody beside SQLite (one INSERT per event), a NATS JetStream stream and PostgreSQL COPY, in one run.",
            discussion: """
                Starts its own nats-server (R1, file storage) and PostgreSQL cluster (initdb, loopback) in a \
                temporary directory, and stops them at the end. Prints each ratio; --json FILE also writes \
                the figures. Debian's nats-server 2.9 fsyncs on a timer, not per message: it is compared with \
                Custody under fsync always (stricter) and never (as durable).
                """
        )

        @Option(help: "Events for the batched appends, the JetStream stream and the projections.") var events = 1_000_000
        @Option(name: .customLong("single-events"), help: "Events for the appends of one event each (64 appenders).")
        var singleEvents = 128_000
        @Option(name: .customLong("sqlite-events"), help: "Events for the seed design's one INSERT per event.") var sqliteEvents = 12_800
        @Option(help: "Write the figures as JSON to this file.") var json: String?

        func validate() throws {
            guard events >= 6_400, singleEvents >= 64, sqliteEvents >= 64 else {
                throw ValidationError("--events takes at least 6,400, --single-events and --sqlite-events at least 64")
            }
        }

        struct Figure: Codable {
            var job: String
            var system: String
            var events: Int
            var seconds: Double
            var perSecond: Double
        }

        struct Ratio: Codable {
            var what: String
            var custody: String
            var other: String
            var ratio: Double
        }

        struct Report: Codable {
            var figures: [Figure]
            var ratios: [Ratio]
        }

        func run() async throws {
            let directory = TemporaryDirectory("bench-compare")
            defer { directory.remove() }
            print("making \(events) span events of 256 B …")
            let spans = try Self.makeSpans(events)
            var figures: [Figure] = []
            func add(_ figure: Figure) {
                figures.append(figure)
                print(
                    "  " + Self.padded(figure.system, 86)
                        + String(format: "%11.0f /s  (%d in %.2f s)", figure.perSecond, figure.events, figure.seconds)
                )
            }

            print("appends of 256 B events (each row says when an append is acknowledged: after an fsync, or once written)")
            let logDirectory = directory.file("log")
            add(try await Self.appendToSegmentLog(spans.map(\.encoded), perAppend: 100, fsync: .always, directory: logDirectory))
            let single = Array(spans.prefix(singleEvents)).map(\.encoded)
            add(try await Self.appendToSegmentLog(single, perAppend: 1, fsync: .always, directory: directory.file("log-single")))
            add(try await Self.appendToSegmentLog(single, perAppend: 1, fsync: .never, directory: directory.file("log-single-never")))
            add(try await Self.insertIntoSQLite(Array(spans.prefix(sqliteEvents)).map(\.encoded), path: directory.file("seed.sqlite")))
            let nats = try await NATSCluster(nodes: 1)
            defer { nats.stop() }
            add(try await Self.publishToJetStream(spans.map(\.encoded), urls: nats.urls))

            print("projections (the same spans)")
            add(try await Self.project(logDirectory: logDirectory, into: .sqlite(directory.file("projections.sqlite"))))
            let postgres = try await PostgreSQLServer()
            defer { postgres.stop() }
            let location = PostgreSQLLocation(host: "127.0.0.1", port: postgres.port, username: PostgreSQLServer.user, database: "postgres")
            add(try await Self.project(logDirectory: logDirectory, into: .postgres(location)))
            add(try await Self.copyIntoPostgreSQL(spans.map(\.span), server: postgres, csv: directory.file("spans.csv")))

            func rate(_ job: String, _ system: String) -> Figure { figures.first { $0.job == job && $0.system.hasPrefix(system) }! }
            let pairs: [(String, Figure, Figure)] = [
                ("appends, 64 writers × 100 events a call / seed SQLite", rate("append", "Custody log, 64 writers × 100"), rate("append", "SQLite")),
                (
                    "appends, 64 writers × 100 events a call / JetStream", rate("append", "Custody log, 64 writers × 100"),
                    rate("append", "NATS JetStream")
                ),
                (
                    "appends, 64 writers × 1 event a call / seed SQLite", rate("append", "Custody log, 64 writers × 1 event a call, fsync always"),
                    rate("append", "SQLite")
                ),
                (
                    "appends, 64 writers × 1 event a call / JetStream", rate("append", "Custody log, 64 writers × 1 event a call, fsync always"),
                    rate("append", "NATS JetStream")
                ),
                (
                    "  the same, both without fsync per write", rate("append", "Custody log, 64 writers × 1 event a call, fsync never"),
                    rate("append", "NATS JetStream")
                ),
                ("projections into SQLite / PostgreSQL COPY", rate("project", "Custody projector → SQLite"), rate("project", "PostgreSQL COPY")),
                (
                    "projections into PostgreSQL / PostgreSQL COPY", rate("project", "Custody projector → PostgreSQL"),
                    rate("project", "PostgreSQL COPY")
                ),
            ]
            let ratios = pairs.map { Ratio(what: $0.0, custody: $0.1.system, other: $0.2.system, ratio: $0.1.perSecond / $0.2.perSecond) }
            print("ratios (Custody / the alternative, same run)")
            for ratio in ratios { print("  " + Self.padded(ratio.what, 56) + String(format: "%9.2f×", ratio.ratio)) }
            if let json {
                try encodeJSON(Report(figures: figures, ratios: ratios)).write(toFile: json, atomically: true, encoding: .utf8)
                print("figures written to \(json)")
            }
        }

        static func padded(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
        }

        struct SampleSpan {
            var span: Span
            var encoded: ByteBuffer
        }

        /// Span events as `bench ingest` makes them: span JSON of about 256 B, 8 spans a trace,
        /// validated as the API would, then encoded.
        static func makeSpans(_ count: Int) throws -> [SampleSpan] {
            var random = SplitMix64(seed: 24)
            let decoder = JSONDecoder()
            let now = SegmentLog.now()
            return try (0..<count).map { n in
                let json = SamplePayloads.span(n, size: 256, spansPerTrace: 8, traceSalt: 24 << 40, random: &random)
                let input = try decoder.decode(SpanInput.self, from: Data(json.readableBytesView))
                let span = try input.validated(now: now) { UUID().uuidString }
                return SampleSpan(span: span, encoded: EventCodec.encode(.span(span)))
            }
        }

        /// 64 appenders, each appending its share `perAppend` events a call.
        static func appendToSegmentLog(_ payloads: [ByteBuffer], perAppend: Int, fsync: FsyncPolicy, directory: String) async throws -> Figure {
            let log = try await SegmentLog.open(directory: directory, configuration: LogConfiguration(fsync: fsync))
            let (events, seconds) = try await timedWriters(payloads) { _, mine in
                var start = 0
                while start < mine.count {
                    let end = min(start + perAppend, mine.count)
                    _ = try await log.append(Array(mine[start..<end]))
                    start = end
                }
            }
            await log.close()
            return Figure(
                job: "append",
                system:
                    "Custody log, 64 writers × \(perAppend) event\(perAppend == 1 ? "" : "s") a call, fsync \(fsync == .always ? "always" : "never")",
                events: events,
                seconds: seconds,
                perSecond: Double(events) / seconds
            )
        }

        /// Runs `write` on `writers` concurrent tasks, each given its index and an equal share of
        /// `items` (the remainder left out); returns how many were handed out and the seconds it
        /// all took.
        static func timedWriters<Item: Sendable>(
            _ items: [Item],
            writers: Int = 64,
            write: @escaping @Sendable (_ writer: Int, _ items: [Item]) async throws -> Void
        ) async throws -> (count: Int, seconds: Double) {
            let share = items.count / writers
            let clock = ContinuousClock()
            let started = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    let mine = Array(items[(writer * share)..<((writer + 1) * share)])
                    group.addTask { try await write(writer, mine) }
                }
                try await group.waitForAll()
            }
            return (share * writers, (clock.now - started).inSeconds)
        }

        /// The seed design: one INSERT, one transaction, per event; WAL with `synchronous=FULL`
        /// (durable like fsync `always`); 64 concurrent writers.
        static func insertIntoSQLite(_ payloads: [ByteBuffer], path: String) async throws -> Figure {
            let pool = try DatabasePool(path: path)
            // GRDB opens WAL connections with synchronous=NORMAL (no fsync per commit); the
            // baseline must be as durable as the log.
            try await pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                guard try Int.fetchOne(db, sql: "PRAGMA synchronous") == 2 else { throw ValidationError("SQLite refused synchronous=FULL") }
                try db.execute(sql: "CREATE TABLE operation_logs (id INTEGER PRIMARY KEY, ingested_at INTEGER NOT NULL, body BLOB NOT NULL)")
            }
            let (events, seconds) = try await timedWriters(payloads.map { Data($0.readableBytesView) }) { _, mine in
                for body in mine {
                    try await pool.write { db in
                        try db.execute(sql: "INSERT INTO operation_logs (ingested_at, body) VALUES (?, ?)", arguments: [SegmentLog.now(), body])
                    }
                }
            }
            let stored = try await pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM operation_logs") } ?? 0
            try pool.close()
            guard stored == events else { throw ValidationError("SQLite holds \(stored) rows, not \(events)") }
            return Figure(
                job: "append",
                system: "SQLite, one INSERT per event (seed), WAL, synchronous=FULL, 64 writers",
                events: stored,
                seconds: seconds,
                perSecond: Double(stored) / seconds
            )
        }

        /// One JetStream message per event on an R1 file stream (acknowledged once written to the
        /// server's file; nats-server 2.9 fsyncs on a timer), published pipelined (nats.c's
        /// asynchronous publishing) by 8 connections, every acknowledgement collected; the
        /// stream's message count checked after.
        static func publishToJetStream(_ payloads: [ByteBuffer], urls: String) async throws -> Figure {
            let setup = try await JetStreamConnection.connect(to: urls)
            // A fresh single server elects itself JetStream's leader within a moment.
            let deadline = ContinuousClock.now + .seconds(20)
            while true {
                do {
                    _ = try await setup.addStream(name: "COMPARE", subjects: ["compare.>"], replicas: 1, duplicateWindow: 0)
                    break
                } catch  where ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            let publishers = 8
            let connections = try await withThrowingTaskGroup(of: JetStreamConnection.self) { group in
                for _ in 0..<publishers { group.addTask { try await JetStreamConnection.connect(to: urls) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let unacknowledged = Atomic<Int>(0)
            let (events, seconds) = try await timedWriters(payloads.map { Array($0.readableBytesView) }, writers: publishers) { writer, mine in
                // In runs of 4,096: each run's acknowledgements are all in before the next.
                var start = 0
                while start < mine.count {
                    let end = min(start + 4096, mine.count)
                    let failed = try await connections[writer].publishPipelined(subject: "compare.\(writer)", payloads: Array(mine[start..<end]))
                    unacknowledged.wrappingAdd(failed, ordering: .relaxed)
                    start = end
                }
            }
            let stored = try await setup.streamInfo("COMPARE")?.messages ?? 0
            for connection in connections { await connection.close() }
            await setup.close()
            let failed = unacknowledged.load(ordering: .relaxed)
            guard failed == 0, stored == UInt64(events) else {
                throw ValidationError("JetStream stored \(stored) of \(events) messages (\(failed) not acknowledged)")
            }
            return Figure(
                job: "append",
                system: "NATS JetStream, R1 file stream, 1 message per event, pipelined (no fsync per write)",
                events: events,
                seconds: seconds,
                perSecond: Double(events) / seconds
            )
        }

        enum Projections {
            case sqlite(String)
            case postgres(PostgreSQLLocation)
        }

        /// Custody's projector reading the log back from the start into fresh projections.
        static func project(logDirectory: String, into projections: Projections) async throws -> Figure {
            let log = try await SegmentLog.open(directory: logDirectory)
            let head = await log.lastSeq
            let clock = ContinuousClock()
            let seconds: Double
            let system: String
            switch projections {
            case .sqlite(let path):
                let store = try SQLiteProjectionStore(path: path)
                let started = clock.now
                try await Projector(log: log, store: store).catchUp()
                seconds = (clock.now - started).inSeconds
                try store.closeDatabase()
                system = "Custody projector → SQLite (every projection)"
            case .postgres(let location):
                seconds = try await PostgreSQLProjectionStore.withStore(at: location, logger: Logger(label: "custody.bench")) { store in
                    let started = clock.now
                    try await Projector(log: log, store: store).catchUp()
                    return (clock.now - started).inSeconds
                }
                system = "Custody projector → PostgreSQL (every projection)"
            }
            await log.close()
            return Figure(job: "project", system: system, events: Int(head), seconds: seconds, perSecond: Double(head) / seconds)
        }

        /// What a user would do without Custody: `COPY` the spans into one table, indexed by trace
        /// and by source and time, with PostgreSQL's default durability (a synchronous commit).
        static func copyIntoPostgreSQL(_ spans: [Span], server: PostgreSQLServer, csv path: String) async throws -> Figure {
            var text = ""
            text.reserveCapacity(spans.count * 300)
            func quoted(_ value: String?) -> String {
                guard let value else { return "" }
                return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            }
            for (index, span) in spans.enumerated() {
                let fields: [String] = [
                    String(index + 1), quoted(span.traceId), quoted(span.spanId), quoted(span.parentSpanId), quoted(span.source),
                    quoted(span.stage), quoted(span.operation), quoted(RFC3339.format(span.timestamp)),
                    span.durationMs.map { String($0) } ?? "", quoted(span.details.map { String(buffer: $0.bytes) }),
                ]
                text += fields.joined(separator: ",") + "\n"
            }
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            _ = try await server.psql(
                """
                CREATE TABLE spans (seq bigint PRIMARY KEY, trace_id text NOT NULL, span_id text, parent_span_id text,
                  source text NOT NULL, stage text NOT NULL, operation text NOT NULL, ts timestamptz NOT NULL,
                  duration_ms double precision, details jsonb);
                CREATE INDEX spans_trace ON spans (trace_id);
                CREATE INDEX spans_source_ts ON spans (source, ts);
                """
            )
            let clock = ContinuousClock()
            let started = clock.now
            _ = try await server.psql("\\copy spans FROM '\(path)' WITH (FORMAT csv)")
            let seconds = (clock.now - started).inSeconds
            let stored = Int(try await server.psql("SELECT count(*) FROM spans").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            guard stored == spans.count else { throw ValidationError("PostgreSQL holds \(stored) spans, not \(spans.count)") }
            return Figure(
                job: "project",
                system: "PostgreSQL COPY into one table (2 indexes)",
                events: stored,
                seconds: seconds,
                perSecond: Double(stored) / seconds
            )
        }
    }
}
