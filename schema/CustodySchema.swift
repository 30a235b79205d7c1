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

    /// The projection migrations, in order.
    public static func projectionMigrations() throws -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "projections", withExtension: nil) else {
            throw CocoaError(.fileNoSuchFile)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        return try names.map { name in
            Migration(name: String(name.dropLast(4)), sql: try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8))
        }
    }
}
