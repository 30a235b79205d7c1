import CustodyCore

extension CoreRuntime {
    /// The SQLite store behind a data directory's runtime, for tests that look at its rows.
    var sqliteStore: SQLiteProjectionStore { projector.store as! SQLiteProjectionStore }
}
