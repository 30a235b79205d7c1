import CustodyLog
import CustodySchema
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// ``ProjectionStore`` in a PostgreSQL schema that several Custody nodes share
/// (docs/projections.md, "On PostgreSQL"): the tables of `schema/projections-postgresql/`, the
/// same named migrations as the SQLite store's.
///
/// Rules:
/// - **One writer at a time.** A node applies batches only while its writer connection holds the
///   session advisory lock of the schema (``mayApply()``); the other nodes read and follow the
///   checkpoint. When the writer dies, PostgreSQL ends its session and frees the lock, and the next
///   node that asks takes it.
/// - **Each event applied once.** A batch's rows and the checkpoint go in one transaction that
///   starts by moving the checkpoint only if it is still before the batch
///   (`UPDATE … WHERE applied_seq < first seq`): a second writer's transaction — one that lost
///   the lock without knowing it — finds no row to move and rolls back.
/// - **Reads** go through a ``PostgresClient`` pool, each one statement (one snapshot), or one
///   REPEATABLE READ transaction when a read returns several things.
/// - The caller runs the pool: ``withStore(at:logger:_:)`` does, around its body.
/// - Everything can be rebuilt from the log: an online rebuild fills the schema `NAME_rebuild`,
///   which then takes the place of `NAME` by two renames in one transaction.
public final class PostgreSQLProjectionStore: ProjectionStore {
    /// The database and schema of the live projections.
    public let location: PostgreSQLLocation
    /// The schema this store writes: the location's, or its `_rebuild` twin for a rebuild target.
    let schema: String
    /// The pool reads go through (nil for a rebuild target, which is only written).
    let client: PostgresClient?
    let writer: PostgreSQLWriter
    let logger: Logger
    let isRebuildTarget: Bool
    public var engine: String { "postgresql" }

    private init(location: PostgreSQLLocation, schema: String, client: PostgresClient?, writer: PostgreSQLWriter, logger: Logger) {
        self.location = location
        self.schema = schema
        self.client = client
        self.writer = writer
        self.logger = logger
        self.isRebuildTarget = schema != location.schema
    }

    /// Opens the store at `location` — creating its schema and running its migrations when
    /// needed — runs `body` with it while its reading pool runs, and closes it afterwards.
    public static func withStore<Result: Sendable>(
        at location: PostgreSQLLocation,
        logger: Logger,
        _ body: (PostgreSQLProjectionStore) async throws -> Result
    ) async throws -> Result {
        let store = try await open(at: location, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.client?.run() }
            defer { group.cancelAll() }
            do {
                let result = try await body(store)
                try? await store.close()
                return result
            } catch {
                try? await store.close()
                throw error
            }
        }
    }

    /// Opens the store (its pool not yet running: see ``withStore(at:logger:_:)``).
    static func open(at location: PostgreSQLLocation, logger: Logger) async throws -> PostgreSQLProjectionStore {
        let writer = PostgreSQLWriter(
            configuration: connectionConfiguration(location, schema: location.schema),
            schema: location.schema,
            lockKey: "custody-projections:\(location.schema)",
            logger: logger
        )
        try await writer.migrate(create: true)
        var clientConfiguration = PostgresClient.Configuration(
            host: location.host,
            port: location.port,
            username: location.username,
            password: location.password,
            database: location.database,
            tls: .disable
        )
        clientConfiguration.options.additionalStartupParameters = [("search_path", location.schema)]
        clientConfiguration.options.maximumConnections = 8
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        return PostgreSQLProjectionStore(location: location, schema: location.schema, client: client, writer: writer, logger: logger)
    }

    static func connectionConfiguration(_ location: PostgreSQLLocation, schema: String) -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: location.host,
            port: location.port,
            username: location.username,
            password: location.password,
            database: location.database,
            tls: .disable
        )
        configuration.options.additionalStartupParameters = [("search_path", schema)]
        return configuration
    }

    /// The pool of reads.
    func reader() throws -> PostgresClient {
        guard let client else { throw CoreError(.internalError, "a rebuild target of the projections is written, not read") }
        return client
    }

    /// Runs a read and collects its rows.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        let logger = logger
        return try await reading { connection in
            try await connection.queryIfOpen(query, logger: logger).collect().map { $0.makeRandomAccess() }
        }
    }

    /// How long a read waits for a connection of the pool (which retries a server that is down,
    /// queueing reads meanwhile) before it fails: a server that cannot be reached in that time
    /// is away.
    static let connectionWait: Duration = .seconds(10)

    /// How long a read may run on its connection before the connection is closed and the read
    /// fails: generous, because a busy machine can make a sound server slow; what this bounds is
    /// a server that went away without closing the socket.
    static let queryTimeout: Duration = .seconds(30)

    /// Runs `body`, a read, on a connection of the pool — waiting at most ``connectionWait`` for
    /// the connection and ``queryTimeout`` on it. A server that cannot be reached, or does not
    /// answer in time (its connection is then closed), is ``CoreError/Code/storageUnavailable``:
    /// what the API answers when the projections cannot be read. An error the server reported
    /// stays as it is.
    func reading<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let client = try reader()
        let location = location
        let leased = LeaseFlag()
        do {
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    try await client.withConnection { connection in
                        leased.value.store(true, ordering: .releasing)
                        return try await connection.withDeadline(Self.queryTimeout, body)
                    }
                }
                group.addTask {
                    // Waiting for a connection: the lease is cancelled when this comes first.
                    try await Task.sleep(for: Self.connectionWait)
                    if leased.value.load(ordering: .acquiring) {
                        // Leased in time: the read's own deadline bounds it; this only backs it up.
                        try await Task.sleep(for: Self.queryTimeout + .seconds(5))
                    }
                    return nil
                }
                defer { group.cancelAll() }
                guard let result = try await group.next(), let value = result else {
                    throw CoreError(
                        .storageUnavailable,
                        "the projections' PostgreSQL server (\(location)) gave no connection within \(Self.connectionWait)"
                    )
                }
                return value
            }
        } catch let error as PSQLError where error.serverInfo == nil {
            throw CoreError(.storageUnavailable, "the projections' PostgreSQL server (\(location)) cannot be reached: \(error.code)", cause: error)
        }
    }

    /// How many rows a projection table has (one of ``SQLiteProjectionStore/tables`` or
    /// `trace_spans`): for checks by operators and tests.
    public func rowCount(of table: String) async throws -> Int {
        guard SQLiteProjectionStore.tables.contains(table) || table == "trace_spans" else {
            throw CoreError(.invalidArgument, "\(table) is not a projection table")
        }
        return Int(try await rows(PostgresQuery(unsafeSQL: "SELECT COUNT(*) FROM \(table)"))[0][0].decode(Int64.self))
    }

    // MARK: Writing

    public func mayApply() async throws -> Bool {
        try await writer.mayApply()
    }

    public func appliedSeq() async throws -> UInt64 {
        try await writer.appliedSeq()
    }

    public func apply(_ batch: ProjectionBatch) async throws {
        try await writer.apply(batch)
    }

    public func recordedLosses() async throws -> Set<LossKey> {
        let rows = try await rows("SELECT first_seq, last_seq, segment, byte_offset FROM log_losses")
        return Set(
            try rows.map { row in
                LossKey(
                    firstSeq: UInt64(bitPattern: try row[0].decode(Int64.self)),
                    lastSeq: UInt64(bitPattern: try row[1].decode(Int64.self)),
                    segment: try row[2].decode(String.self),
                    offset: try row[3].decode(Int64.self)
                )
            }
        )
    }

    public func close() async throws {
        if isRebuildTarget { try? await writer.dropSchema() }
        await writer.close()
    }

    public func backup(to path: String) async throws -> UInt64 {
        throw CoreError(
            .invalidArgument,
            "the projections are in PostgreSQL (\(location)): back them up with pg_dump, or rebuild them from the log (docs/operations.md, \"Backup and restore\")"
        )
    }

    // MARK: Rebuild

    public func makeRebuildTarget() async throws -> any ProjectionStore {
        let schema = location.schema + "_rebuild"
        let writer = PostgreSQLWriter(
            configuration: Self.connectionConfiguration(location, schema: schema),
            schema: schema,
            lockKey: nil,
            logger: logger
        )
        try await writer.dropSchema()
        try await writer.migrate(create: true)
        // A rebuild is thrown away if the process dies: no flush per transaction. The swap's
        // commit is flushed, and with it everything written before it.
        try await writer.execute("SET synchronous_commit = off")
        return PostgreSQLProjectionStore(location: location, schema: schema, client: nil, writer: writer, logger: logger)
    }

    public func finishRebuild() async throws {
        try await writer.execute("ANALYZE")
    }

    public func replaceContents(with rebuilt: any ProjectionStore) async throws -> UInt64 {
        guard let rebuilt = rebuilt as? PostgreSQLProjectionStore, rebuilt.isRebuildTarget, rebuilt.location == location else {
            throw CoreError(.internalError, "a PostgreSQL store can only take the contents of its own rebuild target")
        }
        await rebuilt.writer.close()
        return try await writer.swapSchema(with: rebuilt.schema)
    }
}

/// Whether a read got its connection: set by the read, looked at by its connection deadline.
private final class LeaseFlag: Sendable {
    let value = Atomic<Bool>(false)
}
