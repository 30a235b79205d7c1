import Foundation

/// The SQL of the projections, as it is in `schema/projections/` (copied into the build as a
/// resource, so the files in the repository are exactly what runs).
///
/// Files are named `NNN_description.sql` and are append-only: a change to the schema is a new
/// file, run once as a migration named after it; a file that was released is never edited.
public enum CustodySchema {
    public struct Migration: Sendable, Hashable {
        /// The file name without `.sql`: the migration's name.
        public var name: String
        public var sql: String
    }

    /// The SQL dialect of a projection store: its migrations are in a folder of their own, named
    /// alike.
    public enum Dialect: String, Sendable {
        /// `schema/projections/`.
        case sqlite = "projections"
        /// `schema/projections-postgresql/`: the same tables and migration names, in PostgreSQL's
        /// dialect.
        case postgresql = "projections-postgresql"
    }

    /// The projection migrations of `dialect`, in order.
    public static func projectionMigrations(_ dialect: Dialect = .sqlite) throws -> [Migration] {
        guard let directory = Bundle.module.url(forResource: dialect.rawValue, withExtension: nil) else {
            throw CocoaError(.fileNoSuchFile)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        return try names.map { name in
            Migration(name: String(name.dropLast(4)), sql: try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8))
        }
    }
}
