import Foundation

/// Where a PostgreSQL projection store is: `postgresql://user[:password]@host[:port]/database`,
/// with `?schema=NAME` (default `custody`) for the schema its tables live in
/// (docs/projections.md, "On PostgreSQL").
///
/// The schema is Custody's alone: an online rebuild fills `NAME_rebuild` beside it and swaps the
/// two by renaming them.
public struct PostgreSQLLocation: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var schema: String

    public init(host: String, port: Int = 5432, username: String, password: String? = nil, database: String, schema: String = "custody") {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.schema = schema
    }

    /// Parses a `postgresql://` (or `postgres://`) URL; throws ``CoreError/Code/invalidArgument``
    /// saying what is wrong.
    public init(url text: String) throws(CoreError) {
        func invalid(_ reason: String) -> CoreError {
            CoreError(.invalidArgument, "the projections' URL \(Self.redacted(text)) \(reason): use postgresql://user@host:port/database")
        }
        guard text.hasPrefix("postgresql://") || text.hasPrefix("postgres://"), let components = URLComponents(string: text) else {
            throw invalid("is not a postgresql:// URL")
        }
        guard let host = components.host, !host.isEmpty else { throw invalid("names no host") }
        guard let user = components.user, !user.isEmpty else { throw invalid("names no user") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw invalid("names no database") }
        var schema = "custody"
        for item in components.queryItems ?? [] {
            switch item.name {
            case "schema":
                guard let value = item.value, Self.isPlainIdentifier(value) else {
                    throw invalid("has a schema that is not a plain lower-case name (letters, digits, _; at most 40)")
                }
                schema = value
            default:
                throw invalid("has an option Custody does not know (\(item.name)); only schema= is taken")
            }
        }
        self.init(host: host, port: components.port ?? 5432, username: user, password: components.password, database: database, schema: schema)
    }

    /// A name usable unquoted in SQL, with room for the `_rebuild` and `_old` suffixes.
    static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, (1...40).contains(name.unicodeScalars.count), !("0"..."9").contains(first) else {
            return false
        }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    /// The URL without its password: what logs and errors show.
    public var description: String {
        "postgresql://\(username)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)?schema=\(schema)"
    }

    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }
}
